"""Identity bounded context: the Cognito user pool and the public (secret-less) app client."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra import constants as c
from infra.support import pin_logical_id, suppress


class Identity(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            c.USER_POOL,
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=10,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
        )
        pin_logical_id(self.user_pool, c.USER_POOL)
        suppress(
            self.user_pool,
            "AwsSolutions-COG2",
            "Viewers and broadcasters sign in from the dashboard and OBS-style tools with USER_PASSWORD_AUTH; "
            "TOTP MFA is offered (optional) rather than forced so that sign-up stays one step.",
        )
        for rule in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            suppress(
                self.user_pool,
                rule,
                "Cognito threat protection needs the Plus feature plan (billed per MAU); sign-in is instead rate "
                "limited by the HTTP API stage throttling and Cognito's own per-account limits.",
            )

        # The dashboard and the API call Cognito directly with username/password; a public client has no secret.
        self.client = self.user_pool.add_client(
            c.USER_POOL_CLIENT,
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_password=True),
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        pin_logical_id(self.client, c.USER_POOL_CLIENT)
