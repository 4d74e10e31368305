"""The JSON API under ``/api``, described by ``/api/openapi.json``.

Authentication is ``Authorization: Bearer TOKEN`` with a token from ``rjtrial users
token NAME`` — never a cookie, so no request can be forged from another site.
401: no valid token; 403: a role or site that may not. See :mod:`rjtrial.web`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rjtrial.errors import RegistryError
from rjtrial.registry import EVENT_KINDS
from rjtrial.web import enrolment
from rjtrial.web.accounts import User
from rjtrial.web.security import clean_text

router = APIRouter(prefix="/api", tags=["api"])
_bearer = HTTPBearer(auto_error=False, description="An API token from `rjtrial users token NAME`")
MAX_ITEMS = 50


def _text_map(value: dict, field: str) -> dict:
    if len(value) > MAX_ITEMS:
        raise ValueError(f"{field}: at most {MAX_ITEMS} entries")
    return {
        clean_text(k, field=f"{field} name", max_length=100): clean_text(v, field=f"{field}.{k}", max_length=200)
        for k, v in value.items()
    }


class EnrolmentRequest(BaseModel):
    """A referral to screen and, if eligible, randomise."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "referral_id": "R-0001",
                    "strata": {"site": "london", "offence": "property"},
                    "answers": {
                        "admitted": "yes",
                        "offender_consent": "yes",
                        "victim_consent": "yes",
                        "domestic_abuse": "no",
                    },
                }
            ]
        },
    )

    referral_id: str = Field(min_length=1, max_length=100, description="letters, digits, _ . : / -")
    strata: dict[str, str] = Field(description="the referral's level of every stratum")
    answers: dict[str, str] = Field(description="the answer to every eligibility question")

    @field_validator("referral_id")
    @classmethod
    def _clean_id(cls, value: str) -> str:
        return clean_text(value, field="referral_id", max_length=100)

    @field_validator("strata", "answers")
    @classmethod
    def _clean_maps(cls, value: dict, info) -> dict:
        return _text_map(value, info.field_name)


_SEQUENCE_NUMBER = Field(
    None,
    description="the trial-wide order of random assignment: in managers' responses only "
    "(absent for coordinators, who see site_sequence_number)",
)
_SITE_SEQUENCE_NUMBER = Field(
    description="the allocation's number at its own site (1, 2, 3... per site); null when not randomised"
)


class EnrolmentResponse(BaseModel):
    """The registry's result (``Registry.enrol``), plus ``replayed``."""

    status: Literal["randomised", "ineligible", "refused"]
    referral_id: str
    arm: str | None
    sequence_number: int | None = _SEQUENCE_NUMBER
    site_sequence_number: int | None = _SITE_SEQUENCE_NUMBER
    receipt: str | None
    reasons: list[str]
    randomised_on: str | None
    strata: dict[str, str]
    replayed: bool = Field(description="true: this repeats an earlier request; its first result, nothing new")


class EnrolmentRow(BaseModel):
    """One enrolment as the API lists it (coordinators get the site number only)."""

    status: Literal["randomised", "ineligible"]
    referral_id: str
    arm: str | None
    sequence_number: int | None = _SEQUENCE_NUMBER
    site_sequence_number: int | None = _SITE_SEQUENCE_NUMBER
    receipt: str
    reasons: list[str]
    randomised_on: str | None
    strata: dict[str, str]
    at: str
    by: str


class EnrolmentList(BaseModel):
    """A page of enrolments the caller may see, newest first."""

    total: int = Field(description="how many the caller may see in all")
    enrolments: list[EnrolmentRow] = Field(description="newest first")


class EventRequest(BaseModel):
    """The body of ``POST /api/events``: an event recorded for a referral."""

    model_config = ConfigDict(extra="forbid")

    referral_id: str = Field(min_length=1, max_length=100)
    kind: Literal[EVENT_KINDS]  # type: ignore[valid-type]
    detail: dict[str, str] = Field(default_factory=dict)

    @field_validator("referral_id")
    @classmethod
    def _clean_id(cls, value: str) -> str:
        return clean_text(value, field="referral_id", max_length=100)

    @field_validator("detail")
    @classmethod
    def _clean_detail(cls, value: dict) -> dict:
        return _text_map(value, "detail")


class EventResponse(BaseModel):
    """The event recorded, with its audit entry."""

    referral_id: str
    kind: str
    audit_seq: int


class VerifyResponse(BaseModel):
    """The result of ``GET /api/verify`` (as ``rjtrial verify --json``)."""

    ok: bool
    problems: list[str]
    commitment: str
    audit_entries: int
    referrals: int
    randomised: int
    key_checked: bool


class Question(BaseModel):
    """One eligibility question of the protocol."""

    id: str
    question: str
    answers: list[str]
    eligible_if: list[str]


class ProtocolResponse(BaseModel):
    """The protocol as the API shows it: arms, strata, questions (never the sequence)."""

    id: str
    name: str
    arms: list[str]
    strata: dict[str, list[str]]
    eligibility: list[Question]


class Health(BaseModel):
    """The service is up."""

    status: Literal["ok"]


class Problem(BaseModel):
    """An error: what was wrong, in one line."""

    detail: str


def _service(request: Request):
    return request.app.state.service


def api_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> User:
    """The user of a valid bearer token, else 401."""
    user = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        user = _service(request).accounts.user_for_token(credentials.credentials)
    if user is None:
        raise HTTPException(
            401, "a valid API token is required (Authorization: Bearer TOKEN)", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


def _require(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise HTTPException(403, f"a {user.role} may not do this (needs: {' or '.join(roles)})")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid token"},
    403: {"model": Problem, "description": "role or site not allowed"},
}


@router.get("/health", response_model=Health)
def health() -> dict:
    """Liveness; needs no token and says nothing about the trial."""
    return {"status": "ok"}


@router.get("/protocol", response_model=ProtocolResponse, responses=_ERRORS)
def protocol(request: Request, user: User = Depends(api_user)) -> dict:
    """Arms, strata and eligibility questions: what an enrolment must give."""
    p = _service(request).protocol
    return {
        "id": p.id,
        "name": p.name,
        "arms": list(p.arms),
        "strata": {k: list(v) for k, v in p.strata.items()},
        "eligibility": [
            {"id": q.id, "question": q.question, "answers": list(q.answers), "eligible_if": list(q.eligible_if)}
            for q in p.eligibility
        ],
    }


@router.post(
    "/enrolments",
    response_model=EnrolmentResponse,
    response_model_exclude_unset=True,  # a coordinator's response has no sequence_number at all
    status_code=201,
    responses={
        **_ERRORS,
        200: {"model": EnrolmentResponse, "description": "a repeated request: its first result"},
        422: {"description": "refused (an EnrolmentResponse with reasons) or a malformed request"},
    },
)
def create_enrolment(body: EnrolmentRequest, request: Request, response: Response, user: User = Depends(api_user)):
    """Screen a referral and, if eligible, randomise it (``Registry.enrol``).

    A coordinator's response gives ``site_sequence_number`` only; a manager's also the
    trial-wide ``sequence_number``.

    201: randomised or screened out (ineligible, with reasons). 200: the same
    request was made before; its result is returned and nothing new is done.
    422: refused (nothing recorded but the refusal in the audit log).
    """
    _require(user, "coordinator", "manager")
    service = _service(request)
    try:
        result = enrolment.enrol(service, user, body.referral_id, body.strata, body.answers)
    except enrolment.SiteForbidden as exc:
        raise HTTPException(403, str(exc)) from None
    if result["status"] == "refused":
        response.status_code = 422
    elif result["replayed"]:
        response.status_code = 200
    return result


@router.get("/enrolments", response_model=EnrolmentList, response_model_exclude_unset=True, responses=_ERRORS)
def list_enrolments(
    request: Request,
    user: User = Depends(api_user),
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> dict:
    """Referrals the caller may see, newest first (a coordinator: own sites only, and each
    allocation's number at its site, never the trial-wide sequence number)."""
    _require(user, "coordinator", "manager")
    rows, total = enrolment.visible(_service(request), user, limit=limit, offset=offset)
    return {"total": total, "enrolments": rows}


@router.post(
    "/events",
    response_model=EventResponse,
    status_code=201,
    responses={**_ERRORS, 422: {"model": Problem, "description": "not a randomised referral"}},
)
def create_event(body: EventRequest, request: Request, user: User = Depends(api_user)) -> dict:
    """Record a post-randomisation event (manager); the allocation never changes."""
    _require(user, "manager")
    try:
        seq = _service(request).registry.record_event(body.referral_id, body.kind, by=user.name, detail=body.detail)
    except (RegistryError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return {"referral_id": body.referral_id, "kind": body.kind, "audit_seq": seq}


@router.get("/verify", response_model=VerifyResponse, responses=_ERRORS)
def verify(request: Request, user: User = Depends(api_user)) -> dict:
    """Verify the whole store with the key (auditor, manager)."""
    _require(user, "auditor", "manager")
    return _service(request).registry.verify().to_dict()
