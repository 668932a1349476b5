"""fleetlab: a local stand-in for AWS Systems Manager Patch Manager and Azure compute, built on moto."""
