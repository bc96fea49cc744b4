"""Web dashboard hosting: `web/` in a private bucket behind its own CloudFront distribution (OAC), which also
serves the HTTP API under `/v1/*`, so the dashboard and the API share one domain and the API gets the edge's
per-client limits (infra/edge.py).

Besides the files of `web/`, the deployment writes `config.json` with the deployed endpoints, so the
static dashboard needs no build step to find the API, the WebSocket and the CDN.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra import constants as c
from infra.distribution import suppress_public_cdn_findings
from infra.support import pin_logical_id, repo_path, suppress

# web/ serves its npm dependencies (hls.js, swagger-ui-dist) straight from node_modules; sources, source maps
# and package metadata are not needed by browsers.
WEB_ASSET_EXCLUDE = ["**/*.map", "**/*.md", "package.json", "package-lock.json", "node_modules/.package-lock.json",
                     "node_modules/hls.js/src", "**/__pycache__", "**/tests",
                     # dash.js: only the modern UMD bundles are served (125 MB of builds otherwise).
                     "node_modules/dashjs/dist/legacy", "node_modules/dashjs/dist/modern/esm", "**/*.debug.js"]


# CloudFront passes `/v1/*` to the API as it came: every method, query string, header (the Authorization header
# only through a cache policy), and caches nothing the API does not ask it to (it never does).
API_PATH_PATTERN = "/v1/*"


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(path.is_file() for path in directory.rglob("*"))


class Dashboard(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, log_bucket: s3.IBucket, runtime_config: Mapping[str, str],
        api_domain: str, web_acl_arn: str,
    ) -> None:
        """`api_domain` is the HTTP API's execute-api host; `web_acl_arn` the CLOUDFRONT-scope ACL guarding it."""
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            c.DASHBOARD_BUCKET,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="s3/dashboard/",
        )
        pin_logical_id(self.bucket, c.DASHBOARD_BUCKET)
        self.distribution = cloudfront.Distribution(
            self,
            c.DASHBOARD_DISTRIBUTION,
            comment="StreamForge web dashboard",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            ),
            additional_behaviors={API_PATH_PATTERN: self._api_behavior(api_domain)},
            web_acl_id=web_acl_arn,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/dashboard/",
        )
        pin_logical_id(self.distribution, c.DASHBOARD_DISTRIBUTION)
        suppress_public_cdn_findings(self.distribution)

        # The API document goes beside the dashboard, for its Swagger UI page (web/docs.html).
        # The API is this distribution's `/v1/*`, so the dashboard calls it on its own origin.
        config = {"apiUrl": self.url, **runtime_config}
        sources = [s3deploy.Source.json_data(c.DASHBOARD_CONFIG_FILE, config),
                   s3deploy.Source.data("openapi.json", Path(repo_path("docs/openapi.json")).read_text())]
        # `web/` may still be empty; an empty asset directory is not deployable, so it is only added with files.
        if _has_files(Path(repo_path(c.WEB_ASSET_DIR))):
            sources.insert(0, s3deploy.Source.asset(repo_path(c.WEB_ASSET_DIR), exclude=WEB_ASSET_EXCLUDE))
        s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=sources,
            destination_bucket=self.bucket,
            # New files must be visible at once, not after the CACHING_OPTIMIZED TTL.
            distribution=self.distribution,
            distribution_paths=["/*"],
        )
        self._acknowledge_deployment_handler()

    def _api_behavior(self, api_domain: str) -> cloudfront.BehaviorOptions:
        # TTLs of 0 unless the API says otherwise; a maximum above 0 is what lets the key name Authorization.
        no_cache = cloudfront.CachePolicy(
            self,
            "ApiCachePolicy",
            min_ttl=Duration.seconds(0),
            default_ttl=Duration.seconds(0),
            max_ttl=Duration.seconds(1),
            header_behavior=cloudfront.CacheHeaderBehavior.allow_list("Authorization"),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.all(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
        )
        return cloudfront.BehaviorOptions(
            origin=origins.HttpOrigin(api_domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
                                      origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2]),
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=no_cache,
            # The execute-api endpoint routes on its own Host name, so the viewer's is not passed on.
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        )

    def _acknowledge_deployment_handler(self) -> None:
        # The handler is a stack-level singleton shared by all BucketDeployments, so it is found by its id prefix.
        handler = next(
            child for child in Stack.of(self).node.children if child.node.id.startswith("Custom::CDKBucketDeployment")
        )
        suppress(
            handler,
            "AwsSolutions-IAM5",
            "CDK's BucketDeployment handler reads the staged asset from the CDK assets bucket, syncs it into the "
            "dashboard bucket and invalidates the distribution; the wildcards are CDK's action groups on exactly "
            "those two buckets, plus CloudFront invalidation which has no resource-level scoping.",
            findings=[
                "Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*", "Action::s3:Abort*",
                "Action::s3:DeleteObject*", "Resource::*", f"Resource::<{c.DASHBOARD_BUCKET}.Arn>/*",
                "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            ],
        )
        suppress(
            handler,
            "AwsSolutions-IAM4",
            "CDK's BucketDeployment handler role uses AWSLambdaBasicExecutionRole for its own logs; the construct "
            "does not allow replacing it.",
            findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        )
        suppress(
            handler,
            "AwsSolutions-L1",
            "The BucketDeployment handler runtime is chosen by aws-cdk-lib and moves with CDK upgrades.",
        )

    @property
    def url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"
