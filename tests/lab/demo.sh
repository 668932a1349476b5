#!/usr/bin/env bash
# shellcheck disable=SC2012  # ls -t picks the newest of our own timestamped, space-free names
# `make demo`: the weekly cycle against the lab's reference fleet, ending in a report.
#
#   1. site.yml, stages policy and scan, then a report run: the state before this week's installs (on a fleet
#      patched every week, last week's report run plays that part)
#   2. site.yml, stages install (auto groups) -> review sensitive servers -> report: the week's updates per server
#   3. a sample approval of the review (reviewer "demo", two sensitive servers), recorded
#   4. the controlled install of exactly that approval on exactly those servers, verified
#   5. the report again: the sensitive servers now show their approved updates
#
# The lab must be up (make lab-up) and the venv and collections installed (make venv collections).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck disable=SC1091
. .lab/env.sh
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections" ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default \
  ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-}"
PLAYBOOK=.venv/bin/ansible-playbook
PYTHON=.venv/bin/python
VARS=(-e @playbooks/vars/reference_policy.yml -e @playbooks/vars/demo.yml)
mkdir -p reports

step() { printf '\n=== %s\n' "$*"; }

step "lab: an S3 bucket per account for InstallOverrideLists (what an operator creates once)"
PYTHONPATH=tests/lab "$PYTHON" - <<'PY'
import os, boto3
endpoint = os.environ["AWS_ENDPOINT_URL"]
for account in os.environ["FLEETLAB_ACCOUNTS"].split():
    session = boto3.Session()
    if account != "123456789012":
        creds = session.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/fleetpatch-policy", RoleSessionName="demo")["Credentials"]
        session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"])
    s3 = session.client("s3", region_name="eu-west-1")
    name = f"fleetpatch-demo-{account}"
    if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    print(f"bucket {name} ready")
PY

step "site.yml --tags policy,scan: apply the policy, scan everything; then record the state before installs"
"$PLAYBOOK" site.yml "${VARS[@]}" --tags policy,scan
"$PLAYBOOK" playbooks/report.yml "${VARS[@]}" -e patch_report_label=before-install

step "site.yml --tags install,review,report: install the auto groups, review the sensitive servers, report"
"$PLAYBOOK" site.yml "${VARS[@]}" --tags install,review,report

# The newest review by its run id (a UTC time first); a directory's mtime also moves with later verifications.
review=$(ls -1d reports/history/reviews/*/ | sort | tail -1)
run_id=$(basename "$review")
servers=$("$PYTHON" - "$review/review.yml" <<'PY'
import sys, yaml
review = yaml.safe_load(open(sys.argv[1]))
ids = [s["instance_id"] for s in review["servers"] if s.get("missing")]
print(",".join(ids[:2]))
PY
)
# Approvals are immutable records: each demo run approves its own review under its own id.
approval_id="DEMO-${run_id##*-}"
approval_file="$PWD/reports/$approval_id.yml"
step "approve: reviewer 'demo' approves every reviewed update of $servers (review run $run_id, $approval_id)"
"$PLAYBOOK" playbooks/sensitive_approve.yml "${VARS[@]}" -e "$(printf '%s' \
  "{\"sensitive_patching_run_id\": \"$run_id\", \"sensitive_patching_approval_file\": \"$approval_file\"," \
  " \"sensitive_patching_generate\": {\"approval_id\": \"$approval_id\", \"reviewer\": \"demo\"," \
  " \"reason\": \"make demo: sample approval\", \"ticket\": \"$approval_id\"," \
  " \"servers\": [\"${servers//,/\",\"}\"]}}")"

step "install: exactly the approved packages on exactly the approved servers, then verify"
"$PLAYBOOK" playbooks/sensitive_install.yml "${VARS[@]}" -e "sensitive_patching_approval_file=$approval_file"

step "report: the week's updates per server, including the approved sensitive installs"
"$PLAYBOOK" playbooks/report.yml "${VARS[@]}" -e patch_report_label=demo-after-approval \
  -e "{\"patch_report_approvals\": $("$PYTHON" -c 'import json,glob,sys,yaml
rows = []
for path in sorted(glob.glob(sys.argv[1] + "verification-*.yml")):
    rows += yaml.safe_load(open(path)).get("report_approvals") or []
print(json.dumps(rows))' "$review")}"

step "done"
echo "review:        $review"
ls -1 "${review%/}"/verification-*.md 2>/dev/null | sed 's/^/verification:  /'
latest=$(ls -1t reports/*/report.html 2>/dev/null | head -1 || true)
echo "report (HTML): ${latest:-none written, see the output above}"
echo "weekly runs:   reports/runs/"
