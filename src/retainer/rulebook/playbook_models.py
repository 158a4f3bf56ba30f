"""The `playbooks:` and `consent:` sections: work the segments drive, and the consent gate's
policies (docs/playbooks.md, docs/consent.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from retainer.rulebook.fields import DurationField, Entity, Model, Name

# --- playbooks -------------------------------------------------------------------------------

def _share(value: Any) -> Any:
    """`10%` or `0.1` → 0.1 (a holdout is a share of the eligible entities)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"'{value}' is not a share; write 10% or 0.1") from None
    return value


class Trigger(Model):
    """When a playbook fires (docs/playbooks.md). `enter`, `exit` and `in` name a segment as
    `dimension.segment`, or a tag; `in` fires once `days` into a stay (and again `every`)."""

    enter: str | None = None
    exit: str | None = None
    in_: str | None = Field(default=None, alias="in")
    days: int = Field(default=0, ge=0)           # `in`: how long in the segment first
    every: DurationField | None = None           # `in`: fire again while the stay lasts
    within: DurationField = timedelta(days=7)    # enter/exit: how late it may still fire

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        given = [k for k in ("enter", "exit", "in_") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a trigger needs exactly one of 'enter', 'exit' or 'in' (a "
                             "segment as dimension.segment, or a tag)")
        if self.in_ is None and ("days" in self.model_fields_set or self.every is not None):
            raise ValueError("'days' and 'every' go with 'in' (e.g. in: lifecycle.at_risk, "
                             "days: 14)")
        if self.in_ is not None and "within" in self.model_fields_set:
            raise ValueError("'within' goes with 'enter' and 'exit'; 'in' fires once a stay "
                             "is 'days' old, however late the next act comes")
        if self.every is not None and not self.every:
            raise ValueError("'every' must be a positive duration, e.g. 7d")
        if not self.within:
            raise ValueError("'within' must be a positive duration, e.g. 7d")
        return self

    @property
    def kind(self) -> Literal["enter", "exit", "in"]:
        return "enter" if self.enter else "exit" if self.exit else "in"

    @property
    def segment(self) -> str:
        return str(self.enter or self.exit or self.in_)


class TaskAction(Model):
    """A task for a person: the owner is an account column of the results (e.g. owner) or
    the account's first contact with a role (then the task carries that contact's data and
    passes the consent gate for `channel`)."""

    title: str                                   # a template: {name}, {lifecycle}, …
    owner: str | None = None                     # a results column holding the owner
    owner_role: str | None = None                # …or a contact role
    due: DurationField = timedelta(days=3)
    channel: str | None = None                   # how the owner reaches the contact (phone)
    to: Name | None = None                       # a destination; else kept in the ledger
    stream: str | None = None                    # the destination's table / routing key
    note: str | None = None                      # a template, like the title

    @model_validator(mode="after")
    def _one_owner(self) -> TaskAction:
        if self.owner is not None and self.owner_role is not None:
            raise ValueError("give 'owner' (an account column) or 'owner_role', not both")
        return self


class RouteAction(Model):
    """Put the account in a named work queue (e.g. onboarding, renewals)."""

    queue: str
    to: Name | None = None
    stream: str | None = None


class MessageAction(Model):
    """A message to the account's contacts with the given roles, through a destination;
    every one passes the consent gate for the playbook's purpose and this channel."""

    to: Name
    template: str                                # the template's name in the sending tool
    channel: str = "email"
    roles: tuple[str, ...] | None = None         # None: every contact of the account
    fields: tuple[str, ...] = ()                 # results columns sent as merge fields
    contact_fields: tuple[str, ...] = ()         # contacts source columns (e.g. name)
    stream: str | None = None


class WebhookAction(Model):
    """A call to a webhook destination with the action as JSON."""

    to: Name
    event: str | None = None                     # sent as the event name; default playbook
    fields: tuple[str, ...] = ()                 # results columns sent with the event
    stream: str | None = None


ACTION_KINDS = ("task", "route", "message", "webhook")


class Action(Model):
    """One of `task`, `route`, `message`, `webhook`."""

    task: TaskAction | None = None
    route: RouteAction | None = None
    message: MessageAction | None = None
    webhook: WebhookAction | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an action is one of " + ", ".join(ACTION_KINDS) +
                             f"; found {', '.join(given) or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> TaskAction | RouteAction | MessageAction | WebhookAction:
        body = getattr(self, self.kind)
        assert body is not None
        return body  # type: ignore[no-any-return]


class Cap(Model):
    """At most `max` actions within `per`."""

    max: int = Field(ge=1)
    per: DurationField

    @model_validator(mode="after")
    def _positive(self) -> Cap:
        if not self.per:
            raise ValueError("'per' must be a positive duration, e.g. 7d")
        return self


class Caps(Model):
    """Frequency caps: actions per account, and messages per contact, across playbooks."""

    account: Cap | None = None
    contact: Cap | None = None


class Outcome(Model):
    """What success means for uplift against the holdout: `after` the occurrence, the
    entity is in one of `in` (segments or tags) and in none of `not_in`."""

    in_: tuple[str, ...] = Field(default=(), alias="in")
    not_in: tuple[str, ...] = ()
    after: DurationField = timedelta(days=30)

    @model_validator(mode="after")
    def _something(self) -> Outcome:
        if not self.in_ and not self.not_in:
            raise ValueError("an outcome needs 'in' or 'not_in' (segments as "
                             "dimension.segment, or tags), e.g. not_in: [lifecycle.lapsed]")
        if not self.after:
            raise ValueError("'after' must be a positive duration, e.g. 30d")
        return self


class Playbook(Model):
    """Work the rulebook drives: a trigger, a condition, actions, and their limits."""

    purpose: Name                                # what the data is used for (consent)
    on: Trigger | None = None                    # None: fires while `when` holds
    when: str | None = None                      # a condition over the results
    entity: Entity = "account"
    actions: tuple[Action, ...] = Field(min_length=1)
    cooldown: DurationField | None = None        # no second firing within this time
    caps: Caps | None = None                     # overrides the project's `act.caps`
    holdout: Annotated[float, BeforeValidator(_share)] = Field(default=0, ge=0, lt=1)
    stops: tuple[Name, ...] = ()                 # playbooks that stop for these entities
    outcome: Outcome | None = None               # success, for uplift against the holdout
    description: str | None = None

    @model_validator(mode="after")
    def _fires(self) -> Playbook:
        if self.on is None and self.when is None:
            raise ValueError("a playbook needs 'on' (enter, exit or in a segment) or 'when' "
                             "(a condition)")
        return self


# A playbook with only `when` fires while it holds; without a cooldown it would fire at
# every act, so it gets this one.
CONDITION_COOLDOWN = timedelta(days=30)


class ActSettings(Model):
    """Project-wide settings of `retainer act`."""

    caps: Caps | None = None
    holdout_salt: str | None = None              # default: the project name
    max_attempts: int = Field(default=5, ge=1)   # deliveries tried before giving up


# --- consent ---------------------------------------------------------------------------------

ConsentRule = Literal["opt_in", "opt_out", "none"]


class JurisdictionPolicy(Model):
    """How consent works for contacts in some jurisdictions: per purpose, `opt_in` (a granted
    consent is needed), `opt_out` (allowed unless denied or withdrawn) or `none`."""

    match: tuple[str, ...] = Field(min_length=1)  # codes (DE, US-CA) or prefixes (US*)
    purposes: dict[Name, ConsentRule] = Field(default_factory=dict)
    default: ConsentRule = "opt_in"

    @model_validator(mode="after")
    def _patterns(self) -> JurisdictionPolicy:
        for pattern in self.match:
            if not pattern.strip() or "*" in pattern.rstrip("*") or pattern.strip() == "*":
                raise ValueError(f"'{pattern}' is not a jurisdiction pattern; write a code "
                                 "(DE, US-CA) or a prefix ending in * (US*); contacts "
                                 "matching no policy get 'otherwise'")
        return self


EU_EEA_UK = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
             "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES",
             "SE", "IS", "LI", "NO", "GB", "UK", "EU", "EEA")


def _default_jurisdictions() -> dict[str, JurisdictionPolicy]:
    return {
        "eu": JurisdictionPolicy(match=EU_EEA_UK, purposes={"marketing": "opt_in"},
                                 default="opt_out"),
        "us": JurisdictionPolicy(match=("US", "US*"), purposes={"marketing": "opt_out"},
                                 default="opt_out"),
    }


class ConsentSettings(Model):
    """The consent gate: where consents are, how to find a contact's jurisdiction, and the
    policy per jurisdiction. Contacts matching no policy get `otherwise` (opt-in: safe).
    Policies given under `jurisdictions` come before the built-in `eu` and `us` (so a
    code both name is the user's) and replace one of the same name; `builtin_policies:
    false` starts from none."""

    source: Name | None = None                   # default: the source of kind consents
    jurisdiction: str | None = None              # a contacts column, e.g. country
    jurisdictions: dict[Name, JurisdictionPolicy] = Field(
        default_factory=_default_jurisdictions)
    builtin_policies: bool = True
    otherwise: ConsentRule = "opt_in"

    @model_validator(mode="after")
    def _with_builtins(self) -> ConsentSettings:
        if self.builtin_policies and "jurisdictions" in self.model_fields_set:
            merged = {**self.jurisdictions, **{k: v for k, v in _default_jurisdictions().items()
                                               if k not in self.jurisdictions}}
            object.__setattr__(self, "jurisdictions", merged)
        elif not self.builtin_policies and "jurisdictions" not in self.model_fields_set:
            object.__setattr__(self, "jurisdictions", {})
        return self
