"""Stream distribution: the media bucket (live/, vod/, thumbs/) behind CloudFront with OAC.

Manifests (playlists, MPDs) change every segment, so they are cached for at most 2 s; segments, init segments and
numbered thumbnails are written once (their names start with a session id) and cached for a year. `/time` is the
CDN's clock, answered by a CloudFront Function: the live MPD's UTCTiming points at it (docs/packaging.md).
`ll/*` (LL-HLS) goes to a second origin, the media tasks' HTTP listener on the NLB, with a secret header only
CloudFront sends; its cache key holds the blocking-reload query strings and honours the origin's Cache-Control
(short for playlists, a year for parts).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Fn
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id, suppress

PLAYLIST_PATTERNS = ("*.m3u8", "*.mpd")
# streamforge.media_layout.IMMUTABLE_KEY_PATTERNS (held equal by tests/infra/test_media_cdn.py): the keys written once.
IMMUTABLE_PATTERNS = ("live/*/ses_*", "thumbs/*/ses_*")
CLOCK_PATTERN = "time"  # streamforge.media_layout.TIME_PATH
# A viewer-request function answers it; CloudFront Functions' JavaScript 2.0 runtime can generate a body.
CLOCK_FUNCTION_CODE = """function handler(event) {
  return { statusCode: 200, statusDescription: "OK",
    headers: { "content-type": { value: "text/plain" }, "cache-control": { value: "no-store" },
               "access-control-allow-origin": { value: "*" } },
    body: { encoding: "text", data: new Date().toISOString() } };
}"""
# `latest.jpg` is overwritten every few seconds, unlike the numbered thumbnails.
LATEST_THUMBNAIL_PATTERN = "thumbs/*/latest.jpg"
PLAYLIST_MAX_TTL = Duration.seconds(2)
SEGMENT_TTL = Duration.days(365)
ERROR_CACHING_TTL = Duration.seconds(1)
CDN_ERROR_STATUSES = (400, 403, 404, 500, 502, 503, 504)
LL_MAX_TTL = Duration.days(365)
LL_READ_TIMEOUT = Duration.seconds(30)
"""Longer than a blocking playlist request is held (3 target durations)."""

CDN_TLS_REASON = (
    "The distribution uses the default *.cloudfront.net certificate (no custom domain is configured), for which "
    "CloudFront fixes the minimum protocol; HTTPS is enforced by redirect."
)
CDN_GEO_REASON = "Live streams are public and worldwide; there is no geographic restriction requirement."
CDN_WAF_REASON = (
    "Only public, read-only, cacheable objects are served (GET/HEAD); origin access is locked to CloudFront by OAC. "
    "The web ACL of infra/edge.py guards the API's distribution, where per-client limits matter."
)


def suppress_public_cdn_findings(distribution: cloudfront.Distribution) -> None:
    """What every public distribution of StreamForge acknowledges (a web ACL is the caller's concern)."""
    suppress(distribution, "AwsSolutions-CFR1", CDN_GEO_REASON)
    suppress(distribution, "AwsSolutions-CFR4", CDN_TLS_REASON)


class MediaDistribution(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, log_bucket: s3.IBucket, cors_allow_origins: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            c.MEDIA_BUCKET,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="s3/media/",
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(cors_allow_origins),
                    allowed_headers=["*"],
                    max_age=3600,
                )
            ],
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1))],
        )
        pin_logical_id(self.bucket, c.MEDIA_BUCKET)

        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        cors_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "CorsHeaders",
            cors_behavior=cloudfront.ResponseHeadersCorsBehavior(
                access_control_allow_origins=list(cors_allow_origins),
                access_control_allow_methods=["GET", "HEAD", "OPTIONS"],
                access_control_allow_headers=["*"],
                access_control_expose_headers=["Content-Length", "Content-Range", "ETag"],
                access_control_allow_credentials=False,
                access_control_max_age=Duration.minutes(10),
                origin_override=True,
            ),
        )
        playlists = self._cache_policy("PlaylistCachePolicy", max_ttl=PLAYLIST_MAX_TTL)
        segments = self._cache_policy("SegmentCachePolicy", max_ttl=SEGMENT_TTL, default_ttl=SEGMENT_TTL)

        def behavior(policy: cloudfront.ICachePolicy, *, compress: bool) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                cache_policy=policy,
                response_headers_policy=cors_headers,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD_OPTIONS,
                compress=compress,
            )

        # The LL origin is the media service's NLB, built after this construct (it needs the bucket and this
        # distribution's name): named by its pinned logical id, which CloudFormation orders after the NLB.
        self.ll_origin_secret = secretsmanager.Secret(
            self,
            "LowLatencyOriginSecret",
            description="Sent by CloudFront to the media tasks' LL-HLS origin, which answers no request without it",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=40),
        )
        suppress(self.ll_origin_secret, "AwsSolutions-SMG4",
                 "A shared header value between CloudFront and the media tasks; rotating it needs both redeployed.")
        ll_origin = origins.HttpOrigin(
            Fn.get_att(c.INGEST_LOAD_BALANCER, "DNSName").to_string(),
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            http_port=c.MEDIA_HTTP_PORT,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            read_timeout=LL_READ_TIMEOUT,
            custom_headers={c.LL_ORIGIN_SECRET_HEADER: self.ll_origin_secret.secret_value.unsafe_unwrap()},
        )
        ll_policy = cloudfront.CachePolicy(
            self,
            "LowLatencyCachePolicy",
            min_ttl=Duration.seconds(0),
            default_ttl=Duration.seconds(0),
            max_ttl=LL_MAX_TTL,
            query_string_behavior=cloudfront.CacheQueryStringBehavior.allow_list(*c.LL_QUERY_STRINGS),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )

        # Order matters: the first matching pattern wins, so the LL origin's paths (playlists and parts too) and
        # the thumbnail that is rewritten come first.
        additional: dict[str, cloudfront.BehaviorOptions] = {
            c.LL_PATH_PATTERN: cloudfront.BehaviorOptions(
                origin=ll_origin,
                cache_policy=ll_policy,
                response_headers_policy=cors_headers,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD_OPTIONS,
                compress=True,
            ),
            LATEST_THUMBNAIL_PATTERN: behavior(playlists, compress=False),
        }
        additional |= {pattern: behavior(playlists, compress=True) for pattern in PLAYLIST_PATTERNS}
        additional |= {pattern: behavior(segments, compress=False) for pattern in IMMUTABLE_PATTERNS}
        clock = cloudfront.Function(
            self, "ClockFunction", code=cloudfront.FunctionCode.from_inline(CLOCK_FUNCTION_CODE),
            runtime=cloudfront.FunctionRuntime.JS_2_0, comment="The CDN's clock for DASH UTCTiming (ISO 8601 UTC)")
        additional[CLOCK_PATTERN] = cloudfront.BehaviorOptions(
            origin=origin, cache_policy=cloudfront.CachePolicy.CACHING_DISABLED, response_headers_policy=cors_headers,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            function_associations=[cloudfront.FunctionAssociation(
                function=clock, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST)])

        self.distribution = cloudfront.Distribution(
            self,
            c.MEDIA_DISTRIBUTION,
            comment="StreamForge live and VOD media",
            # Anything unrecognised gets the short TTL: a stale object is worse than an extra origin fetch.
            default_behavior=behavior(playlists, compress=True),
            additional_behaviors=additional,
            error_responses=[
                cloudfront.ErrorResponse(http_status=status, ttl=ERROR_CACHING_TTL) for status in CDN_ERROR_STATUSES
            ],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/media/",
        )
        pin_logical_id(self.distribution, c.MEDIA_DISTRIBUTION)
        suppress_public_cdn_findings(self.distribution)
        suppress(self.distribution, "AwsSolutions-CFR2", CDN_WAF_REASON)
        suppress(self.distribution, "AwsSolutions-CFR5",
                 "The LL-HLS origin is the NLB's plain HTTP listener: CloudFront cannot validate a certificate for "
                 "the NLB's generated DNS name. Its content is the same public media; the secret origin header "
                 "keeps viewers from bypassing the CDN (a custom origin domain with a certificate would remove this).")

    @property
    def base_url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"

    def _cache_policy(
        self, construct_id: str, *, max_ttl: Duration, default_ttl: Duration | None = None
    ) -> cloudfront.CachePolicy:
        # min 0 lets the publisher's Cache-Control shorten the TTL; no headers or cookies in the key.
        return cloudfront.CachePolicy(
            self,
            construct_id,
            min_ttl=Duration.seconds(0),
            default_ttl=default_ttl or Duration.seconds(1),
            max_ttl=max_ttl,
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
