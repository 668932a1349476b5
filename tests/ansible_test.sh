#!/usr/bin/env bash
# ansible-test on a copy of this collection: `tests/ansible_test.sh [sanity|units|all] [ansible-test options]`.
#
# ansible-test only accepts a collection that really sits at .../ansible_collections/<namespace>/<name> (a
# symlink is resolved and rejected), so the checkout is copied to a temporary tree, without local state and the
# lab. amazon.aws (from `make collections`) is copied beside it for the import and validate-modules tests.
# `all` (the default) runs sanity, then units when tests/unit has tests.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(cd "${VENV:-$repo/.venv}" && pwd)
python_version=3.11
what=${1:-all}
[[ $# -gt 0 ]] && shift
case $what in
  sanity | units | all) ;;
  *) echo "usage: $0 [sanity|units|all] [ansible-test options]" >&2; exit 2 ;;
esac

# Without shellcheck, ansible-test skips its shellcheck test with a mere warning.
if ! command -v shellcheck >/dev/null; then
  echo "ansible_test.sh: shellcheck is required (apt-get install shellcheck)" >&2
  exit 2
fi
amazon_aws=$repo/.cache/collections/ansible_collections/amazon/aws
if [[ ! -f $amazon_aws/MANIFEST.json ]]; then
  echo "ansible_test.sh: amazon.aws is missing from $amazon_aws: run 'make collections' first" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetpatch-ansible-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/fleetpatch/ssm
mkdir -p "$dest" "$work/ansible_collections/amazon"
# Without .git, ansible-test tests every file in the tree, so work in progress that git does not track yet is
# tested too.
tar -C "$repo" -c \
  --exclude=./.git --exclude=./.venv --exclude=./.cache --exclude=./.lab --exclude=./tests/lab \
  --exclude=./build --exclude=./reports --exclude=./tests/output --exclude='.*_cache' \
  --exclude=__pycache__ --exclude='*.tar.gz' . | tar -C "$dest" -x
cp -a "$amazon_aws" "$work/ansible_collections/amazon/aws"

# ansible-test bootstraps pip in each of its virtual environments with a get-pip script downloaded from a host
# this machine cannot reach. The seeded stand-in installs pip from the interpreter's bundled wheel (ensurepip,
# in a subprocess: in-process it sets PIP_CONFIG_FILE=/dev/null and drops the machine's pip settings), then
# installs the pip release ansible-test asked for.
seed_get_pip() {
  local pip_version seed tmp
  pip_version=$("$venv/bin/python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$python_version"'"))["pip"])')
  seed=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
  mkdir -p "$(dirname "$seed")"
  tmp=$(mktemp "$seed.XXXXXX") # several runs at once each write their own, then rename
  cat >"$tmp" <<'PY'
"""Stand-in for ansible-test's get-pip bootstrap, seeded by fleetpatch.ssm's tests/ansible_test.sh."""
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}  # get-pip options that `pip install` does not know

subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *(a for a in sys.argv[1:] if a not in GET_PIP_ONLY)]))
PY
  mv "$tmp" "$seed"
}

has_unit_tests() {
  [[ -d $dest/tests/unit ]] && [[ -n $(find "$dest/tests/unit" -name 'test_*.py' -print -quit) ]]
}

seed_get_pip
cd "$dest"
# The collection is found through its own ansible_collections tree; the developer's path would add the checkout.
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
color=$([[ -t 1 ]] && echo yes || echo no)

# ansible-test installs each test's requirements with pip; this machine's package index configuration makes
# pip print one "is ignored" warning per package, which hides the results.
ansible_test() {
  "$venv/bin/ansible-test" "$@" --venv --python "$python_version" --color "$color" 2>&1 |
    { grep --line-buffered -v 'is ignored: it is neither a file nor a directory' || true; }
}

if [[ $what == sanity || $what == all ]]; then
  ansible_test sanity "$@"
fi
if [[ $what == units || $what == all ]]; then
  if has_unit_tests; then
    # ansible-test units installs tests/unit/requirements.txt; by default the plugins' runtime requirements
    # (boto3, botocore, the Azure SDK) at their pinned versions, from requirements/runtime.txt.
    if [[ ! -f tests/unit/requirements.txt ]]; then
      grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' requirements/runtime.txt >tests/unit/requirements.txt
    fi
    ansible_test units "$@"
  else
    echo "ansible-test units: no tests under tests/unit yet"
  fi
fi
