"""Create the AWS resources declared in infra/template.yaml in moto, so local runs cannot drift.

The template is read as CloudFormation YAML (intrinsic tags included); the resources the
functions talk to (DynamoDB tables, SNS topics, SQS queues, SSM parameters, Secrets Manager
secrets) are created through boto3 with the properties the template gives, and each
function's environment is resolved the way CloudFormation would resolve it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: _intrinsic(loader, suffix, node))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data, intrinsic functions as {"Ref": ...} / {"Fn::X": ...}."""
    return yaml.load(path.read_text(), Loader=_CfnLoader)


@dataclass
class Stack:
    """A template resolved against parameter values and the physical resources created for it."""

    template: dict[str, Any]
    name: str = "emberwatch-local"
    region: str = "us-east-1"
    parameters: dict[str, str] = field(default_factory=dict)
    physical: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> {"Ref":..., attrs}

    def __post_init__(self) -> None:
        for key, spec in (self.template.get("Parameters") or {}).items():
            if key not in self.parameters and "Default" in spec:
                self.parameters[key] = str(spec["Default"])

    # ------------------------------------------------------------ intrinsic functions

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attr(logical, attr)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = self.resolve(arg[0]), self.resolve(arg[1])
                return items[int(index)]
            if key == "Fn::Split":
                return self.resolve(arg[1]).split(arg[0])
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in arg[1])
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
                return self._evaluate(value)
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.get("Conditions", {})[name]))

    def _evaluate(self, expression: Any) -> Any:
        ((key, arg),) = expression.items()
        if key == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if key == "Fn::Not":
            return not self._evaluate(arg[0])
        if key == "Fn::And":
            return all(self._evaluate(a) for a in arg)
        if key == "Fn::Or":
            return any(self._evaluate(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        return self.resolve(expression)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise KeyError(f"template reference {name!r} is not a parameter or a provisioned resource")

    def _attr(self, logical: str, attr: str) -> str:
        try:
            return self.physical[logical][attr]
        except KeyError:
            raise KeyError(f"attribute {logical}.{attr} is not known locally") from None

    def _sub(self, arg: Any) -> str:
        text, extra = (
            (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.resolve(v) for k, v in arg[1].items()})
        )

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return self._attr(logical, attr)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    # ------------------------------------------------------------ resources

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v.get("Type") == kind}

    def provision(self, session: Any, *, endpoint_url: str | None = None) -> Stack:
        """Create the template's data-plane resources in the (moto) account behind `session`."""

        def client(service: str) -> Any:
            return session.client(service, region_name=self.region, endpoint_url=endpoint_url)

        ssm, secrets, dynamodb, sns, sqs = (
            client(s) for s in ("ssm", "secretsmanager", "dynamodb", "sns", "sqs")
        )
        for logical, resource in self.resources("AWS::SSM::Parameter").items():
            props = self.resolve(resource["Properties"])
            ssm.put_parameter(
                Name=props["Name"], Value=props["Value"], Type=props.get("Type", "String"), Overwrite=True
            )
            self.physical[logical] = {"Ref": props["Name"]}
        for logical, resource in self.resources("AWS::SecretsManager::Secret").items():
            props = self.resolve(resource["Properties"])
            created = secrets.create_secret(Name=props["Name"], SecretString=props.get("SecretString", "{}"))
            self.physical[logical] = {"Ref": created["ARN"], "Id": created["ARN"]}
        for logical, resource in self.resources("AWS::DynamoDB::Table").items():
            self._create_table(dynamodb, logical, self.resolve(resource["Properties"]))
        queues = self.resources("AWS::SQS::Queue")
        # dead-letter queues first: a queue's RedrivePolicy names its dead-letter queue's ARN
        for logical in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
            props = self.resolve(queues[logical].get("Properties", {}))
            name = props.get("QueueName", f"{self.name}-{logical}")
            url = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(props))["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.physical[logical] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
        for logical, resource in self.resources("AWS::SNS::Topic").items():
            props = self.resolve(
                {k: v for k, v in resource.get("Properties", {}).items() if k != "KmsMasterKeyId"}
            )
            name = props.get("TopicName", f"{self.name}-{logical}")
            arn = sns.create_topic(Name=name)["TopicArn"]
            self.physical[logical] = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        return self

    def _create_table(self, dynamodb: Any, logical: str, props: dict[str, Any]) -> None:
        name = props.get("TableName", f"{self.name}-{logical}")
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        description = dynamodb.describe_table(TableName=name)["Table"]
        self.physical[logical] = {"Ref": name, "Arn": description["TableArn"]}

    # ------------------------------------------------------------ functions

    def function_environment(self, logical: str) -> dict[str, str]:
        """The environment variables CloudFormation would give a function (Globals merged)."""
        glob = (self.template.get("Globals", {}).get("Function", {}).get("Environment", {}) or {}).get(
            "Variables", {}
        )
        function = self.template["Resources"][logical]["Properties"]
        own = (function.get("Environment") or {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in {**glob, **own}.items()}

    def function_code_dir(self, logical: str) -> Path:
        return (TEMPLATE.parent / self.template["Resources"][logical]["Properties"]["CodeUri"]).resolve()


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    """SQS CreateQueue attributes from AWS::SQS::Queue properties (FIFO, timeouts, redrive)."""
    names = ("FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout", "MessageRetentionPeriod")
    attributes = {
        name: str(props[name]).lower() if isinstance(props[name], bool) else str(props[name])
        for name in names
        if name in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attributes


def provision(
    session: Any,
    *,
    endpoint_url: str | None = None,
    parameters: dict[str, str] | None = None,
    name: str = "emberwatch-local",
) -> Stack:
    """Load infra/template.yaml and create its resources; returns the resolved stack."""
    stack = Stack(load_template(), name=name, parameters=dict(parameters or {}))
    return stack.provision(session, endpoint_url=endpoint_url)
