"""cfn-lint on every synthesized template: what cannot be deployed here is checked against what CloudFormation accepts.

cfn-lint validates each resource against AWS's resource specification (property names, types, allowed values,
references). Errors fail the test; so does any warning other than the one kind the CDK library itself emits.
"""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

# W3005 "dependency already enforced by a Ref/GetAtt": aws-cdk-lib adds these redundant DependsOn itself (a Lambda
# function on the role it is given, CDK's singleton provider functions on their roles); the DependsOn StreamForge
# writes (the NLB on its access-log bucket's policy) are not redundant.
CDK_LIBRARY_WARNINGS = frozenset({"W3005"})


def test_every_template_passes_cfn_lint(synth: Synth) -> None:
    templates = sorted(synth.outdir.glob("*.template.json"))
    assert len(templates) >= 2  # the main stack and the edge stack
    findings = {
        path.name: [f"{m.rule.id} {m.message} ({m.path_string})" for m in lint_file(path, config=ManualArgs())
                    if m.rule.id not in CDK_LIBRARY_WARNINGS]
        for path in templates
    }
    assert findings == {path.name: [] for path in templates}
