"""DynamoDB tables, the media bucket and the CloudFront distributions."""

from __future__ import annotations

from typing import Any

import pytest

from infra import constants as c
from tests.infra.conftest import Synth, mentions

pytestmark = pytest.mark.infra

# docs/contracts.md: table -> (partition key, sort key, {gsi: (pk, sk)}, ttl attribute)
TABLES: dict[str, tuple[str, str | None, dict[str, tuple[str, str]], str | None]] = {
    "StreamsTable": ("stream_id", None, {"by_status": ("status", "created_at"),
                                         "by_owner": ("owner_id", "created_at")}, None),
    "StreamKeysTable": ("key_hash", None, {"by_stream": ("stream_id", "created_at")}, None),
    "SessionsTable": ("stream_id", "session_id", {}, None),
    "UsersTable": ("pk", "sk", {"gsi1": ("gsi1pk", "gsi1sk")}, None),
    "AnalyticsTable": ("pk", "sk", {}, "expires_at"),
    "ConnectionsTable": ("pk", "sk", {"gsi1": ("gsi1pk", "gsi1sk")}, "expires_at"),
    "IdempotencyTable": ("id", None, {}, "expiration"),
}


def _key_schema(schema: list[dict[str, str]]) -> tuple[str, str | None]:
    by_type = {k["KeyType"]: k["AttributeName"] for k in schema}
    return by_type["HASH"], by_type.get("RANGE")


@pytest.mark.parametrize("table_id", sorted(TABLES))
def test_table_matches_contract(synth: Synth, table_id: str) -> None:
    partition_key, sort_key, indexes, ttl = TABLES[table_id]
    props = synth.resources[table_id]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert _key_schema(props["KeySchema"]) == (partition_key, sort_key)
    assert all(a["AttributeType"] == "S" for a in props["AttributeDefinitions"])
    actual_indexes = {
        gsi["IndexName"]: _key_schema(gsi["KeySchema"]) for gsi in props.get("GlobalSecondaryIndexes", [])
    }
    assert actual_indexes == indexes
    assert all(gsi["Projection"]["ProjectionType"] == "ALL" for gsi in props.get("GlobalSecondaryIndexes", []))
    assert props.get("TimeToLiveSpecification", {}).get("AttributeName") == ttl
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_exactly_the_seven_contract_tables(synth: Synth) -> None:
    assert set(synth.of_type("AWS::DynamoDB::Table")) == set(TABLES)


def test_media_bucket_is_private_ssl_only_logged_and_cors_enabled(synth: Synth) -> None:
    bucket = synth.resources["MediaBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert "LoggingConfiguration" in bucket
    assert {"GET", "HEAD"} <= set(bucket["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"])
    policies = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": "MediaBucket"}]
    assert mentions(policies, '"aws:SecureTransport": "false"')
    # Only CloudFront (OAC, SourceArn of the media distribution) may read.
    assert mentions(policies, "cloudfront.amazonaws.com") and mentions(policies, "MediaDistribution")


def _behaviour_ttls(synth: Synth, behaviour: dict[str, Any]) -> dict[str, int]:
    policy_id = behaviour["CachePolicyId"]["Ref"]
    config = synth.resources[policy_id]["Properties"]["CachePolicyConfig"]
    return {"min": config["MinTTL"], "default": config["DefaultTTL"], "max": config["MaxTTL"]}


def test_cdn_caches_playlists_briefly_and_segments_for_long(synth: Synth) -> None:
    config = synth.resources["MediaDistribution"]["Properties"]["DistributionConfig"]
    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    for pattern in ("*.m3u8", "*.mpd"):
        assert _behaviour_ttls(synth, behaviours[pattern])["max"] <= 2
    # Keys written once (segments, init segments, numbered thumbnails) start with a session id, whatever the
    # segment format's extension (tests/infra/test_media_cdn.py holds these to streamforge.media_layout).
    for pattern in ("live/*/ses_*", "thumbs/*/ses_*"):
        ttls = _behaviour_ttls(synth, behaviours[pattern])
        assert ttls["default"] >= 86400 and ttls["max"] >= 86400
    assert _behaviour_ttls(synth, behaviours["thumbs/*/latest.jpg"])["max"] <= 2
    assert _behaviour_ttls(synth, config["DefaultCacheBehavior"])["max"] <= 2
    for error in config["CustomErrorResponses"]:
        assert 1 <= error["ErrorCachingMinTTL"] <= 2
    assert {e["ErrorCode"] for e in config["CustomErrorResponses"]} >= {403, 404}


def test_cdn_uses_origin_access_control_and_cors_headers(synth: Synth) -> None:
    config = synth.resources["MediaDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = [o for o in config["Origins"] if "S3OriginConfig" in o]  # the other is the LL-HLS origin
    oac_id = origin["OriginAccessControlId"]["Fn::GetAtt"][0]
    assert synth.resources[oac_id]["Type"] == "AWS::CloudFront::OriginAccessControl"
    assert origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert all(b["ViewerProtocolPolicy"] == "redirect-to-https" for b in behaviours)
    header_policies = {b["ResponseHeadersPolicyId"]["Ref"] for b in behaviours}
    (policy_id,) = header_policies
    cors = synth.resources[policy_id]["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert "GET" in cors["AccessControlAllowMethods"]["Items"]


def test_dashboard_has_its_own_private_bucket_and_distribution(synth: Synth) -> None:
    config = synth.resources["DashboardDistribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert "OriginAccessControlId" in config["Origins"][0]
    (deployment,) = synth.of_type("Custom::CDKBucketDeployment").values()
    assert deployment["Properties"]["DestinationBucketName"] == {"Ref": "DashboardBucket"}


def test_ll_behaviour_keys_on_the_blocking_reload_queries_and_reaches_the_tasks_with_a_secret(synth: Synth) -> None:
    from streamforge_media.llorigin import ORIGIN_SECRET_HEADER

    config = synth.resources["MediaDistribution"]["Properties"]["DistributionConfig"]
    patterns = [b["PathPattern"] for b in config["CacheBehaviors"]]
    assert patterns[0] == "ll/*"  # before *.m3u8 and *.m4s, which would otherwise take its playlists and parts
    ll = config["CacheBehaviors"][0]
    key = synth.resources[ll["CachePolicyId"]["Ref"]]["Properties"]["CachePolicyConfig"]
    query = key["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"]
    assert query["QueryStringBehavior"] == "whitelist"
    assert sorted(query["QueryStrings"]) == ["_HLS_msn", "_HLS_part", "_HLS_skip"]
    # The origin's Cache-Control rules: nothing cached without one, a year allowed for parts.
    assert key["MinTTL"] == 0 and key["DefaultTTL"] == 0 and key["MaxTTL"] >= 86400
    origin = next(o for o in config["Origins"] if o["Id"] == ll["TargetOriginId"])
    assert origin["DomainName"] == {"Fn::GetAtt": [c.INGEST_LOAD_BALANCER, "DNSName"]}
    assert synth.resources[c.INGEST_LOAD_BALANCER]["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    assert origin["CustomOriginConfig"]["HTTPPort"] == c.MEDIA_HTTP_PORT
    assert origin["CustomOriginConfig"]["OriginReadTimeout"] >= 20  # longer than a blocked request
    (header,) = origin["OriginCustomHeaders"]
    assert header["HeaderName"] == c.LL_ORIGIN_SECRET_HEADER == ORIGIN_SECRET_HEADER
    secret_id = header["HeaderValue"]["Fn::Join"][1][1]["Ref"]
    assert synth.resources[secret_id]["Type"] == "AWS::SecretsManager::Secret"
    # The task gets the same secret, so the origin answers CloudFront only.
    (task,) = synth.of_type("AWS::ECS::TaskDefinition").values()
    secrets = {s["Name"]: s["ValueFrom"] for cd in task["Properties"]["ContainerDefinitions"]
               for s in cd.get("Secrets", [])}
    assert secrets["STREAMFORGE_LL_ORIGIN_SECRET"] == {"Ref": secret_id}
    assert 400 in {e["ErrorCode"] for e in config["CustomErrorResponses"]}  # not CloudFront's default 10 s
