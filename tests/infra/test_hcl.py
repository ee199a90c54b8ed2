"""The infra assertions read straight from the HCL (python-hcl2): they run even where terraform is absent.

scripts/check_infra.sh runs the same properties through `terraform test` with the real provider schema
when terraform and its provider folder are present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of keys and strings: drop them, recursively."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def parse(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every top-level block of the .tf files of one folder, by block type."""
    blocks: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            for kind, items in unquote(hcl2.load(handle)).items():
                blocks.setdefault(kind, []).extend(items)
    return blocks


def resources(module: str, kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type in a module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for block in parse(INFRA / "modules" / module).get("resource", []):
        found.update(block.get(kind, {}))
    return found


MODULES = sorted(p.name for p in (INFRA / "modules").iterdir() if p.is_dir())
FOLDERS = [INFRA / "modules" / m for m in MODULES] + sorted((INFRA / "envs").iterdir())


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_variable_has_type_and_description_and_every_output_a_description(folder):
    blocks = parse(folder)
    for block in blocks.get("variable", []):
        for name, body in block.items():
            assert "type" in body and body.get("description"), f"{folder.name}: variable {name}"
    for block in blocks.get("output", []):
        for name, body in block.items():
            assert body.get("description"), f"{folder.name}: output {name}"
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= {p.name for p in folder.glob("*.tf")}


def test_provider_is_pinned_to_5_100():
    for folder in FOLDERS:
        terraform = parse(folder)["terraform"][0]
        assert terraform["required_providers"][0]["aws"]["version"] == "~> 5.100", folder.name


def test_only_the_web_alb_faces_the_internet():
    for module in MODULES:
        for name, lb in resources(module, "aws_lb").items():
            assert lb["internal"] is (module != "web"), f"{module}.{name}"
    assert all(
        s.get("map_public_ip_on_launch", False) is False for s in resources("network", "aws_subnet").values()
    )
    for module in MODULES:
        assert not resources(module, "aws_lambda_function_url"), "no Lambda function URLs"
        assert not resources(module, "aws_instance"), "instances only through the Auto Scaling groups"


def test_no_ingress_from_any_address_outside_the_web_alb():
    for module in MODULES:
        for name, rule in resources(module, "aws_vpc_security_group_ingress_rule").items():
            if module == "web" and name.startswith("alb_"):
                assert rule["cidr_ipv4"] == "${each.value}"  # the allowed-CIDR list
                continue
            if module == "network" and name == "endpoints_https":
                assert rule["cidr_ipv4"] == "${aws_vpc.this.cidr_block}"  # the VPC's own range only
                continue
            assert "cidr_ipv4" not in rule and "referenced_security_group_id" in rule, f"{module}.{name}"


def test_worker_port_admits_only_the_alb():
    rule = resources("worker_fleet", "aws_vpc_security_group_ingress_rule")["worker_from_alb"]
    assert rule["referenced_security_group_id"] == "${aws_security_group.alb.id}"


def test_bucket_private_encrypted_tls_only():
    block = resources("results_bucket", "aws_s3_bucket_public_access_block")["this"]
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                           "restrict_public_buckets"))  # fmt: skip
    sse = resources("results_bucket", "aws_s3_bucket_server_side_encryption_configuration")["this"]
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    policy = resources("results_bucket", "aws_s3_bucket_policy")["this"]["policy"]
    assert "aws:SecureTransport" in policy and "Deny" in policy


@pytest.mark.parametrize("module", ["worker_fleet", "web"])
def test_imdsv2_and_encrypted_volumes(module):
    template = resources(module, "aws_launch_template")["this"]
    assert template["metadata_options"][0]["http_tokens"] == "required"
    assert all(b["ebs"][0]["encrypted"] is True for b in template["block_device_mappings"])
    assert "key_name" not in template


@pytest.mark.parametrize("module, policy", [("worker_fleet", "worker"), ("edge", "lambda")])
def test_roles_cannot_list_objects_or_delete_in_the_bucket(module, policy):
    text = resources(module, "aws_iam_role_policy")[policy]["policy"]
    # The one exception: the worker's /health probe is HeadBucket, which S3 authorises as s3:ListBucket.
    probe = 'Action = ["s3:ListBucket"], Resource = var.bucket_arn}'
    if module == "worker_fleet":
        assert text.count(probe) == 1
        text = text.replace(probe, "")
    assert "s3:List" not in text and "s3:Delete" not in text and '"s3:*"' not in text


def test_every_method_needs_a_key_and_the_authorizer_has_ttl_0():
    methods = resources("edge", "aws_api_gateway_method")
    assert set(methods) == {"any", "docs"}
    assert methods["any"]["api_key_required"] is True and methods["any"]["authorization"] == "CUSTOM"
    authorizer = resources("edge", "aws_api_gateway_authorizer")["this"]
    assert authorizer["type"] == "REQUEST" and authorizer["authorizer_result_ttl_in_seconds"] == 0
    assert resources("edge", "aws_api_gateway_rest_api")["this"]["api_key_source"] == "AUTHORIZER"


def edge_locals() -> dict[str, Any]:
    """The edge module's locals."""
    found: dict[str, Any] = {}
    for block in parse(INFRA / "modules" / "edge").get("locals", []):
        found.update(block)
    return found


def test_only_the_api_docs_are_public_and_exactly_the_paths_the_app_serves_them_on():
    """GET without key or authorizer on /docs, /redoc, /openapi.json and the assets: what FastAPIOffline serves."""
    from edge_api.app import build_app
    from edge_api.settings import EdgeSettings

    app = build_app(EdgeSettings())
    served = {getattr(route, "path", "") for route in app.routes}
    docs = resources("edge", "aws_api_gateway_method")["docs"]
    assert (docs["http_method"], docs["authorization"], docs["api_key_required"]) == ("GET", "NONE", False)
    pages, assets = edge_locals()["docs_pages"], edge_locals()["docs_assets_path"]
    assert {"/" + page for page in pages} | {"/" + assets} == {app.docs_url or "/docs", "/redoc", app.openapi_url,
                                                              "/static-offline-docs"}  # fmt: skip
    assert {"/" + page for page in pages} <= served and "/" + assets in served  # the mount serves the assets
    resource = resources("edge", "aws_api_gateway_resource")
    assert resource["docs_assets"]["path_part"] == "{proxy+}"
    integration = resources("edge", "aws_api_gateway_integration")["docs"]
    assert (
        integration["type"] == "AWS_PROXY" and integration["uri"] == "${aws_lambda_function.api.invoke_arn}"
    )


def test_a_change_to_any_route_redeploys_the_stage():
    triggers = resources("edge", "aws_api_gateway_deployment")["this"]["triggers"]["redeployment"]
    for kind, names in (("aws_api_gateway_resource", ("proxy", "docs", "docs_assets")),
                        ("aws_api_gateway_method", ("any", "docs")), ("aws_api_gateway_integration", ("any", "docs"))):  # fmt: skip
        for name in names:
            assert f"{kind}.{name}," in triggers or f"{kind}.{name}]" in triggers, f"{kind}.{name}"


def test_usage_plans_throttle_and_gateway_responses_have_the_openai_shape():
    for plan in resources("edge", "aws_api_gateway_usage_plan").values():
        assert plan["throttle_settings"] and plan["quota_settings"]
    template = resources("edge", "aws_api_gateway_gateway_response")["openai"]["response_templates"]
    assert all(k in str(template) for k in ("error", "message", "type", "param", "code"))


def test_the_lambda_runs_in_the_vpc():
    api = resources("edge", "aws_lambda_function")["api"]
    assert api["vpc_config"][0]["subnet_ids"] == "${var.private_subnet_ids}"


@pytest.mark.parametrize("module", ["worker_fleet", "web"])
def test_amis_are_pinned_ids_never_a_latest_parameter(module):
    template = resources(module, "aws_launch_template")["this"]
    assert template["image_id"] == "${var.ami_id}"
    for folder in FOLDERS:
        for block in parse(folder).get("data", []):
            assert "aws_ssm_parameter" not in block, (
                f"{folder.name}: AMI or anything else from an SSM parameter"
            )
        for block in parse(folder).get("variable", []):
            assert "latest" not in str(block.get("ami_id", {}).get("default", "")), folder.name


@pytest.mark.parametrize("module", ["worker_fleet", "web"])
def test_a_new_launch_template_version_rolls_the_group(module):
    group = resources(module, "aws_autoscaling_group")["this"]
    assert group["launch_template"][0]["version"] == "${aws_launch_template.this.latest_version}"
    assert group["instance_refresh"][0]["strategy"] == "Rolling"


def test_an_apply_never_resets_the_worker_count():
    group = resources("worker_fleet", "aws_autoscaling_group")["this"]
    assert "desired_capacity" not in group
    assert group["lifecycle"][0]["ignore_changes"] == ["desired_capacity"]


def test_no_reserved_concurrency_by_default_and_the_authorizer_has_its_own_role():
    functions = resources("edge", "aws_lambda_function")
    assert "reserved_concurrent_executions" not in functions["authorizer"]
    variables = {
        name: body for block in parse(INFRA / "modules" / "edge")["variable"] for name, body in block.items()
    }
    assert variables["reserved_concurrency"]["default"] == -1
    assert functions["authorizer"]["role"] == "${aws_iam_role.authorizer.arn}"
    assert functions["api"]["role"] == "${aws_iam_role.lambda.arn}"


def test_the_bucket_has_no_cors_nothing_in_a_browser_calls_it():
    assert not resources("results_bucket", "aws_s3_bucket_cors_configuration")


def test_the_root_keeps_state_in_an_s3_backend_configured_at_init():
    terraform = parse(INFRA / "envs" / "prod")["terraform"][0]
    assert terraform["backend"][0] == {"s3": {}}  # partial configuration: backend.hcl
    example = (INFRA / "envs" / "prod" / "backend.hcl.example").read_text()
    assert "use_lockfile" in example and "encrypt" in example


def test_nat_is_off_by_default():
    for folder in (INFRA / "modules" / "network", INFRA / "envs" / "prod"):
        variables = {n: b for block in parse(folder)["variable"] for n, b in block.items()}
        assert variables["enable_nat"]["default"] is False, folder.name
