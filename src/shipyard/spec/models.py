"""The models of the config repository format (apiVersion shipyard/v1): data only, with defaults."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shipyard.spec.types import CountOrPercent, Cpu, Duration, EnvValue, Fraction, Memory
from shipyard.spec.units import parse_duration

API_VERSION = "shipyard/v1"
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_RE = re.compile(NAME_PATTERN)
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=40)]


class Model(BaseModel):
    """Base of every model: camelCase keys in YAML, unknown keys rejected, values immutable."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True,
                              allow_inf_nan=False)


class Document(Model):
    api_version: Literal["shipyard/v1"] = Field(description="Always `shipyard/v1`.")


# ---- service -------------------------------------------------------------------------------------


def _artifact_schema(schema: dict[str, object]) -> None:
    """`command` is required with `path` only (an image carries its own), and exactly one source is given."""
    schema["required"] = []
    schema["dependentRequired"] = {"path": ["command"]}
    schema["oneOf"] = [{"required": ["path"]}, {"required": ["image"]}]


class Artifact(Model):
    model_config = ConfigDict(json_schema_extra=_artifact_schema)

    path: Optional[str] = Field(default=None, min_length=1,
                                description="Local source: a directory of the config repository holding the "
                                "service's code, snapshotted per release (the inner loop).")
    image: Optional[Name] = Field(default=None, description="An artifact in the store (`shipyard build`), "
                                  "run at the service's `version`; the release pins its digest.")
    command: list[str] = Field(description="argv run in the service's directory, e.g. `[python3, app.py]`; "
                               "optional with `image` (the image's entrypoint and command).")

    @model_validator(mode="before")
    @classmethod
    def _command_from_image(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("image") is not None and "command" not in data:
            return {**data, "command": []}
        return data

    @field_validator("command")
    @classmethod
    def _command_for_path(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value and "image" in info.data and info.data["image"] is None:  # (an invalid image: said already)
            raise ValueError("List should have at least 1 item after validation, not 0")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "Artifact":
        if (self.path is None) == (self.image is None):
            raise ValueError("give exactly one of `path` (local source) and `image` (a built artifact)")
        return self


class SecretRef(Model):
    secret: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
                        description="Key path in the environment's `secrets/<env>.yaml`, e.g. `payments.api_key`; "
                        "the decrypted value reaches the instance's environment only.")


def _env_kind(value: object) -> str:
    return "secret" if isinstance(value, (dict, SecretRef)) else "value"


EnvEntry = Annotated[
    Union[Annotated[EnvValue, Tag("value")], Annotated[SecretRef, Tag("secret")]],
    Discriminator(_env_kind),
]


class Endpoint(Model):
    port: Optional[int] = Field(default=None, ge=1024, le=65535,
                                description="Stable port on 127.0.0.1; assigned and kept when absent.")


class Ingress(Model):
    host: Optional[str] = Field(default=None, min_length=1, description="Route requests with this Host header.")
    path: Optional[str] = Field(default=None, pattern=r"^/", description="Route requests whose path starts here.")

    @model_validator(mode="after")
    def _host_or_path(self) -> "Ingress":
        if self.host is None and self.path is None:
            raise ValueError("ingress needs a host, a path, or both")
        return self


class Resources(Model):
    cpu: Cpu = Field(default=0.1, gt=0, description="CPU cores (`0.5`) or millicores (`250m`) requested and enforced.")
    memory: Memory = Field(default=128 * 1024**2, gt=0, description="Memory limit, e.g. `128Mi`, `1Gi`.")


class Probe(Model):
    path: str = Field(default="/healthz", pattern=r"^/", description="HTTP path probed on the instance's port.")
    interval: Duration = Field(default=5.0, gt=0, description="Time between probes (a new instance's readiness "
                               "is probed every 100 ms until it first passes).")
    timeout: Duration = Field(default=1.0, gt=0, description="Time a probe may take.")
    failure_threshold: int = Field(default=3, ge=1, description="Consecutive failures before the probe fails.")


class Health(Model):
    readiness: Probe = Field(default_factory=Probe, description="Gates traffic: an instance gets requests once it passes.")
    liveness: Probe = Field(default_factory=lambda: Probe(interval=10.0, timeout=2.0),
                            description="An instance failing it is replaced.")
    startup_timeout: Duration = Field(default=30.0, gt=0,
                                      description="An instance not ready within this is replaced and counted as a failure.")


class Stop(Model):
    grace_period: Duration = Field(default=10.0, ge=0, description="Time between SIGTERM and killing what is left.")


class Routing(Model):
    timeout: Duration = Field(default=0.0, ge=0, description="Whole-request timeout at the proxy; `0s` means none "
                              "(long requests and WebSockets are not cut).")
    idle_timeout: Duration = Field(default=300.0, gt=0, description="A request or connection idle this long is closed.")
    retries: int = Field(default=2, ge=0, le=10, description="Retries on connect failure or reset (idempotent methods).")


class RollingStrategy(Model):
    max_surge: CountOrPercent = Field(default="25%", description="Instances above `replicas` during a rollout.")
    max_unavailable: CountOrPercent = Field(default=0, description="Instances below `replicas` during a rollout.")
    min_ready: Duration = Field(default=0.0, ge=0, description="How long a new instance must stay ready to count as available.")
    progress_deadline: Duration = Field(default=600.0, gt=0, description="A rollout not done by then is marked failed and stops.")


class CommandGate(Model):
    command: list[str] = Field(min_length=1, description="Run with `$TARGET_URL` set to the canary/preview endpoint; exit 0 passes.")
    timeout: Duration = Field(default=60.0, gt=0)


class UrlGate(Model):
    url: str = Field(min_length=1, description="GET; `{target}` is replaced by the canary/preview endpoint; 2xx passes.")
    timeout: Duration = Field(default=10.0, gt=0)


class ApprovalGate(Model):
    approval: Literal[True] = Field(description="Wait for `shipyard rollout approve SERVICE`.")


def _gate_kind(value: object) -> str | None:
    keys = _keys(value)
    return next((kind for kind in ("command", "url", "approval") if kind in keys), None)


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value)
    return set(getattr(value, "model_fields_set", ()) or ())


Gate = Annotated[
    Union[Annotated[CommandGate, Tag("command")], Annotated[UrlGate, Tag("url")], Annotated[ApprovalGate, Tag("approval")]],
    Discriminator(_gate_kind, custom_error_type="gate_kind",
                  custom_error_message="a gate needs one of: command, url, approval"),
]


class BlueGreenStrategy(Model):
    auto_promote: bool = Field(default=True, description="Switch traffic once green is ready and the checks pass.")
    scale_down_delay: Duration = Field(default=30.0, ge=0, description="How long blue keeps running after the switch (undo window).")
    pre_promotion: list[Gate] = Field(default_factory=list, description="Checks against the preview endpoint before the switch.")


class HeaderMatch(Model):
    name: str = Field(min_length=1)
    exact: Optional[str] = None
    prefix: Optional[str] = None
    regex: Optional[str] = None

    @model_validator(mode="after")
    def _one_rule(self) -> "HeaderMatch":
        if sum(rule is not None for rule in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("a header match has exactly one of exact, prefix or regex")
        return self


def _bounded(entry: "ThresholdAnalysis | PrometheusAnalysis") -> None:
    if entry.min is None and entry.max is None:
        raise ValueError("set min, max or both")
    if entry.min is not None and entry.max is not None and entry.min > entry.max:
        raise ValueError(f"min {entry.min:g} is greater than max {entry.max:g}")


class CookieMatch(Model):
    name: str = Field(min_length=1)
    exact: str


class Match(Model):
    header: Optional[HeaderMatch] = None
    cookie: Optional[CookieMatch] = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Match":
        if (self.header is None) == (self.cookie is None):
            raise ValueError("a match has exactly one of header or cookie")
        return self


MetricName = Literal["requestRate", "successRate", "errorRate", "latencyP50", "latencyP95", "latencyP99"]


def _number_or_duration_ms(value: object) -> object:
    # Latency thresholds read naturally as durations (`500ms`); they are compared in milliseconds.
    if isinstance(value, str):
        return parse_duration(value) * 1000
    return value


Threshold = Annotated[
    float,
    BeforeValidator(_number_or_duration_ms),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h)$"}]}),
]


class ThresholdAnalysis(Model):
    metric: MetricName = Field(description="A built-in metric of the canary over the check window "
                               "(latency in milliseconds; a duration like `500ms` is accepted).")
    min: Optional[Threshold] = None
    max: Optional[Threshold] = None

    @model_validator(mode="after")
    def _has_bounds(self) -> "ThresholdAnalysis":
        _bounded(self)
        return self


class CompareAnalysis(Model):
    compare: Literal["errorRate", "latency"] = Field(description="Compare canary with primary over the whole canary, "
                                                     "at every scrape, with an anytime-valid sequential test.")
    max_increase: Fraction = Field(default=0.0, ge=0, description="Tolerated increase, e.g. `20%`: of the error rate, or of "
                                   "the share of requests slower than each latency bound. A larger one, shown at any "
                                   "scrape, rolls back at once; a step advances once one larger than it plus 10 "
                                   "percentage points is ruled out.")
    confidence: Fraction = Field(default=0.95, ge=0.5, lt=1, description="1 − the probability of a false rollback "
                                 "over the whole rollout, however often the test looks.")


class PrometheusAnalysis(Model):
    metric: Literal["prometheus"]
    query: str = Field(min_length=1, description="PromQL; `{service}`, `{release}` and `{cluster}` (the release's "
                       "Envoy cluster, as in `envoy_cluster_name`) are substituted.")
    min: Optional[float] = None
    max: Optional[float] = None
    address: Optional[str] = Field(default=None, pattern=r"^https?://",
                                   description="Prometheus base URL, e.g. `http://127.0.0.1:9090`; "
                                   "defaults to `$SHIPYARD_PROMETHEUS_URL` of the control plane.")

    @model_validator(mode="after")
    def _has_bounds(self) -> "PrometheusAnalysis":
        _bounded(self)
        return self


def _analysis_kind(value: object) -> str | None:
    keys = _keys(value)
    if "compare" in keys:
        return "compare"
    if "metric" in keys:
        metric = value.get("metric") if isinstance(value, dict) else getattr(value, "metric", None)
        return "prometheus" if metric == "prometheus" else "threshold"
    return None


Analysis = Annotated[
    Union[Annotated[PrometheusAnalysis, Tag("prometheus")], Annotated[ThresholdAnalysis, Tag("threshold")],
          Annotated[CompareAnalysis, Tag("compare")]],
    Discriminator(_analysis_kind, custom_error_type="analysis_kind",
                  custom_error_message="an analysis entry needs `metric` or `compare`"),
]


class ParallelRunIgnore(Model):
    headers: list[str] = Field(default_factory=list, description="Response headers never compared, e.g. `x-request-id`.")
    json_: list[str] = Field(default_factory=list, alias="json",
                             description="JSONPaths removed from JSON bodies before comparing, e.g. `$.timestamp`, `$.items[*].id`.")

    @field_validator("json_")
    @classmethod
    def _json_paths(cls, paths: list[str]) -> list[str]:
        import jsonpath_ng  # the parser the comparator uses

        for path in paths:
            if not path.startswith("$"):
                raise ValueError(f"{path!r} is not a JSONPath: start it with `$`, e.g. `$.timestamp`")
            try:
                jsonpath_ng.parse(path)
            except Exception as exc:  # jsonpath_ng raises bare Exceptions for bad syntax
                raise ValueError(f"{path!r} is not a valid JSONPath: {exc}") from None
        return paths


HttpMethod = Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]


class ParallelRun(Model):
    percent: float = Field(default=10, gt=0, le=100,
                           description="Percent of live requests (of `methods`) copied, off the user's path, to the comparator.")
    methods: list[HttpMethod] = Field(default_factory=lambda: ["GET"], min_length=1,
                                      description="Methods copied; a non-idempotent method is never duplicated unless listed.")
    ignore: ParallelRunIgnore = Field(default_factory=ParallelRunIgnore,
                                      description="What is never compared: headers and JSON fields known to differ.")
    max_differences: Optional[int] = Field(default=None, ge=0,
                                           description="Unexplained differences beyond this fail the canary's analysis; unset: report only.")


class CanaryStrategy(Model):
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=lambda: [5, 25, 50, 100], min_length=1,
                                                            description="Traffic weights in percent, ascending, ending at 100.")
    interval: Duration = Field(default=10.0, gt=0, description="Minimum time at each step; thresholds are judged after "
                               "it (and every interval while holding); `compare` entries at every scrape.")
    failure_threshold: int = Field(default=2, ge=1, description="Failed threshold analyses before rollback (a "
                                   "`compare` regression rolls back at once).")
    min_requests: int = Field(default=50, ge=0, description="Below this many canary requests in a step the step holds.")
    analysis: list[Analysis] = Field(default_factory=list)
    match: list[Match] = Field(default_factory=list, description="Requests matching any entry go to the canary.")
    mirror: float = Field(default=0, ge=0, le=100, description="Percent of primary traffic shadowed to the canary first.")
    pre_rollout: list[Gate] = Field(default_factory=list)
    pre_promotion: list[Gate] = Field(default_factory=list)
    parallel_run: Optional[ParallelRun] = Field(default=None, description="Compare the candidate's answers with two live instances' (see docs/parallel-run.md).")

    @field_validator("steps")
    @classmethod
    def _ascending_to_100(cls, steps: list[int]) -> list[int]:
        # A field validator, so the error points at `steps` and other fields' errors are reported too.
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError("must be strictly ascending, e.g. [10, 50, 100]")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100: all traffic on the new release")
        return steps


class Strategy(Model):
    type: Literal["rolling", "recreate", "blue-green", "canary"] = Field(default="rolling")
    rolling: RollingStrategy = Field(default_factory=RollingStrategy)
    blue_green: BlueGreenStrategy = Field(default_factory=BlueGreenStrategy)
    canary: CanaryStrategy = Field(default_factory=CanaryStrategy)


class Database(Model):
    name: Name = Field(description="The database's name, unique in the environment; its URL is `DATABASE_URL` "
                       "(with several: `<NAME>_DATABASE_URL` for each).")
    engine: Literal["postgres", "redis"] = Field(default="postgres", description="The server the environment runs "
                                                 "for it: PostgreSQL (`DATABASE_URL`) or Redis (`REDIS_URL`; the "
                                                 "service's keys must start with `<name>:`).")


class ReleasePhase(Model):
    command: list[str] = Field(min_length=1, description="argv run once per new release, before any of its instances "
                               "gets traffic, in the release's sandbox with its files and env (schema migrations); "
                               "a non-zero exit keeps the release from being deployed.")
    timeout: Duration = Field(default=600.0, gt=0, description="A release phase still running after this fails.")
    rerun_on_rollback: bool = Field(default=False, description="Run it again when an older release comes back "
                                    "(a rollback); migrations are not rolled back with the code either way.")


class Service(Document):
    kind: Literal["Service"]
    name: Name = Field(description="Stable name: lower case letters, digits and `-`.")
    version: str = Field(min_length=1, description="Version label shown everywhere and given as `$SHIPYARD_VERSION`.")
    artifact: Artifact
    replicas: int = Field(default=1, ge=0, le=1000, description="Instances to run.")
    endpoint: Endpoint = Field(default_factory=Endpoint)
    ingress: Optional[Ingress] = None
    env: dict[str, EnvEntry] = Field(default_factory=dict, description="Configuration given to the service as "
                                     "environment variables: a value, or `{secret: KEY.PATH}` from `secrets/<env>.yaml`.")
    needs: list[Name] = Field(default_factory=list, description="Services this one calls; each gives `<NAME>_URL`.")
    resources: Resources = Field(default_factory=Resources)
    health: Health = Field(default_factory=Health)
    stop: Stop = Field(default_factory=Stop)
    routing: Routing = Field(default_factory=Routing)
    strategy: Strategy = Field(default_factory=Strategy)
    databases: list[Database] = Field(default_factory=list, description="Databases the environment provides to this "
                                      "service alone (a role per service; no other service can connect).")
    release: Optional[ReleasePhase] = Field(default=None, description="A command run once per new release before "
                                            "traffic (Heroku's release phase).")


# ---- project and environments --------------------------------------------------------------------


def _stage(value: object) -> object:
    # `environments: [dev, prod]` stays valid: a bare name is a stage with the default edge.
    return {"name": value} if isinstance(value, str) else value


def _check_kind(value: object) -> str | None:
    keys = _keys(value)
    if "command" in keys:
        return "command"
    if "url" in keys:
        return "url"
    return _analysis_kind(value)


VerifyCheck = Annotated[
    Union[Annotated[CommandGate, Tag("command")], Annotated[UrlGate, Tag("url")],
          Annotated[PrometheusAnalysis, Tag("prometheus")], Annotated[ThresholdAnalysis, Tag("threshold")]],
    Discriminator(_check_kind, custom_error_type="check_kind",
                  custom_error_message="a verify check needs one of: command, url, metric"),
]


class Stage(Model):
    """One environment of the promotion path, and the edge that brings versions into it from the one before."""

    name: Name = Field(description="The environment (environments/NAME.yaml).")
    auto: bool = Field(default=False, description="Commit a version into this environment's overlay by itself once "
                       "it is verified in the previous environment; otherwise `shipyard promote` does it.")
    soak: Duration = Field(default=0.0, ge=0, description="How long a release must run in the previous environment "
                           "after its rollout completed, without rollback, restart storm or failing check, to be verified.")
    verify: list[VerifyCheck] = Field(default_factory=list, description="Checks a release must pass in the previous "
                                      "environment after its soak (commands and URLs get `$TARGET_URL`; thresholds "
                                      "over the soak window).")
    approval: bool = Field(default=False, description="Even an `auto` edge waits for `shipyard promote` (a person).")
    api: Optional[str] = Field(default=None, pattern=r"^(https?|unix)://",
                               description="The control plane of this environment when it runs elsewhere (its "
                               "`--api-listen` URL); its token is read from `$SHIPYARD_TOKEN_<NAME>`.")


class SemverPolicy(Model):
    semver: str = Field(min_length=1, description="A range of versions, e.g. `>=1.0.0 <2.0.0` or `^1.2` (npm syntax).")

    @field_validator("semver")
    @classmethod
    def _valid_range(cls, text: str) -> str:
        import semantic_version

        try:
            semantic_version.NpmSpec(text)
        except ValueError as exc:
            raise ValueError(f"not a version range: {exc}") from None
        return text


class OrderPolicy(Model):
    order: Literal["asc", "desc"] = Field(default="asc", description="`asc`: the greatest is newest.")


class NumericalPolicy(Model):
    numerical: OrderPolicy = Field(description="Versions are numbers (e.g. build numbers or timestamps).")


class AlphabeticalPolicy(Model):
    alphabetical: OrderPolicy = Field(description="Versions compare as text (e.g. `RELEASE.2024-05-01T10-00-00Z`).")


def _policy_kind(value: object) -> str | None:
    keys = _keys(value)
    return next((kind for kind in ("semver", "numerical", "alphabetical") if kind in keys), None)


VersionPolicy = Annotated[
    Union[Annotated[SemverPolicy, Tag("semver")], Annotated[NumericalPolicy, Tag("numerical")],
          Annotated[AlphabeticalPolicy, Tag("alphabetical")]],
    Discriminator(_policy_kind, custom_error_type="policy_kind",
                  custom_error_message="a version policy needs one of: semver, numerical, alphabetical"),
]


class TagFilter(Model):
    pattern: str = Field(min_length=1, description="Only versions matching this regular expression count.")
    extract: Optional[str] = Field(default=None, description="What to compare, e.g. `$ts` from a named group "
                                   "`(?P<ts>...)` of the pattern.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


class Automation(Model):
    """New versions of a service reach an environment by themselves: an automation commit into its overlay."""

    service: Name = Field(description="The service whose versions are followed.")
    environment: Name = Field(description="The environment whose overlay gets the automation commits.")
    policy: VersionPolicy = Field(default_factory=lambda: SemverPolicy(semver=">=0.0.0"),
                                  description="Which version is newest.")
    filter_tags: Optional[TagFilter] = Field(default=None, description="Only some versions count (e.g. no `-rc`).")
    interval: Duration = Field(default=60.0, gt=0, description="How often the artifact store is asked.")


class Project(Document):
    kind: Literal["Project"]
    name: Name
    environments: list[Annotated[Stage, BeforeValidator(_stage)]] = Field(
        min_length=1, description="Ordered: the promotion path, e.g. `[dev, staging, prod]`; an entry may be a name or "
        "a stage `{name, auto, soak, verify, approval, api}` describing how versions reach it.")
    automation: list[Automation] = Field(default_factory=list, description="Services whose new versions reach an "
                                         "environment by themselves.")

    store: Optional[str] = Field(default=None, min_length=1,
                                 description="Where `artifact.image` artifacts live: an OCI layout directory (relative "
                                 "to the project) or a registry `HOST[:PORT]/PREFIX` (default ~/.shipyard/artifacts; "
                                 "$SHIPYARD_STORE overrides it).")

    @property
    def environment_names(self) -> list[str]:
        return [stage.name for stage in self.environments]

    def stage(self, name: str) -> Optional[Stage]:
        return next((stage for stage in self.environments if stage.name == name), None)

    def next_stage(self, name: str) -> Optional[Stage]:
        """The stage after `name` on the promotion path (where its verified versions go), if any."""
        names = self.environment_names
        if name not in names or names.index(name) + 1 >= len(names):
            return None
        return self.environments[names.index(name) + 1]


class Environment(Document):
    kind: Literal["Environment"]
    name: Name
    services: dict[str, Optional[dict]] = Field(default_factory=dict,
                                                description="Service name → overlay of any Service field, deep-merged onto the base.")
    flags: dict[str, Optional[dict]] = Field(default_factory=dict,
                                             description="Flag key → overlay of a flag of `flags/*` (flagd format), "
                                             "deep-merged onto it; `null` removes the flag from this environment.")
