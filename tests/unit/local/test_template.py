from pathlib import Path

import pytest

from local.template import LOCAL_REGION, Template, UnresolvableError

pytestmark = pytest.mark.unit

BODY = {
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {},
               "Metadata": {"aws:asset:path": "asset.abc"}},
        "Dist": {"Type": "AWS::CloudFront::Distribution", "Properties": {}},
        "Integ": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {}},
    }
}


@pytest.fixture
def template() -> Template:
    t = Template(BODY, assembly_dir=Path("/assembly"))
    t.bind("Table", "StreamForge-Table", Arn="arn:aws:dynamodb:us-east-1:123456789012:table/StreamForge-Table")
    return t


def test_ref_getatt_and_pseudo_parameters_resolve(template: Template) -> None:
    assert template.resolve({"Ref": "Table"}) == "StreamForge-Table"
    assert template.resolve({"Fn::GetAtt": ["Table", "Arn"]}).endswith(":table/StreamForge-Table")
    assert template.resolve({"Fn::GetAtt": "Table.Arn"}).startswith("arn:aws:dynamodb")
    assert template.resolve({"Ref": "AWS::Region"}) == LOCAL_REGION


def test_join_sub_select_split_nest(template: Template) -> None:
    joined = {"Fn::Join": ["", ["https://cognito-idp.", {"Ref": "AWS::Region"}, ".amazonaws.com/", {"Ref": "Table"}]]}
    assert template.resolve(joined) == f"https://cognito-idp.{LOCAL_REGION}.amazonaws.com/StreamForge-Table"
    assert template.resolve({"Fn::Sub": "${Table}/${AWS::Region}/${Table.Arn}"}).startswith(
        f"StreamForge-Table/{LOCAL_REGION}/arn:")
    assert template.resolve({"Fn::Sub": ["x-${Name}", {"Name": {"Ref": "Table"}}]}) == "x-StreamForge-Table"
    split = {"Fn::Select": [1, {"Fn::Split": ["/", {"Fn::GetAtt": ["Table", "Arn"]}]}]}
    assert template.resolve(split) == "StreamForge-Table"


def test_what_is_not_emulated_is_reported_not_guessed(template: Template) -> None:
    with pytest.raises(UnresolvableError):
        template.resolve({"Fn::GetAtt": ["Dist", "DomainName"]})
    with pytest.raises(UnresolvableError):
        template.resolve({"Fn::ImportValue": "x"})
    assert template.try_resolve({"Ref": "Dist"}) is None


def test_logical_id_of_integration_target_and_asset_path(template: Template) -> None:
    assert template.logical_id_of({"Fn::Join": ["", ["integrations/", {"Ref": "Integ"}]]}) == "Integ"
    lambda_uri = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"},
                                    ":lambda:path/functions/", {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]}
    assert template.logical_id_of(lambda_uri) == "Fn"
    assert template.try_logical_id_of({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":layer:x"]]}) is None
    assert template.logical_id_of({"Fn::GetAtt": ["Fn", "Arn"]}) == "Fn"
    assert template.asset_path("Fn") == Path("/assembly/asset.abc")
    with pytest.raises(UnresolvableError):
        template.asset_path("Table")
