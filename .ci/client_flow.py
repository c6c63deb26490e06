"""A short flow through the Python client generated from /openapi.json.

Run by .ci/client.sh against a fresh server. Every request goes through the
generated package (no hand-written HTTP), so the flow fails when the document
misdescribes a path, a parameter, a body or a response the flow relies on:

  sign up, sign in, prove the address with the mailed token, create an
  organisation and a few teams, then page through the teams two at a time
  following next_cursor, and count what was seen.

    python .ci/client_flow.py BASE_URL CLIENT_DIR MAIL_DIR

CLIENT_DIR holds the generated package gatehouse_client; MAIL_DIR is the
server's <data-dir>/mail, where it writes mail as .eml files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, NoReturn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("base_url")
parser.add_argument("client_dir")
parser.add_argument("mail_dir")
args = parser.parse_args()

# The generated package, as generated (not installed); and mail_token.py
# beside this file, shared with .ci/schemathesis.sh.
sys.path.insert(0, args.client_dir)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gatehouse_client import AuthenticatedClient, Client
from gatehouse_client.api.accounts import me, sign_in, sign_up, verify_email
from gatehouse_client.api.organizations import create_org, create_team, list_teams
from gatehouse_client.models import (
    CreateOrgRequest,
    CreateTeamRequest,
    MeView,
    OrgView,
    PageTeamView,
    SessionCreated,
    SignInRequest,
    SignUpRequest,
    TeamView,
    TokenRequest,
    UserView,
    VerifiedView,
)
from gatehouse_client.types import UNSET, Response, Unset

from mail_token import find_token

EMAIL = "owner@client.example.com"
PASSWORD = "correct horse battery"
TEAMS = 5  # created, then listed 2 per page: pages of 2, 2 and 1
PAGE = 2


def log(msg: str) -> None:
    print(f"client_flow.py: {msg}", flush=True)


def fail(msg: str) -> NoReturn:
    # Not `assert`: python -O would drop it.
    print(f"client_flow.py: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def expect(what: str, resp: Response[Any], status: int, model: type) -> Any:
    """The parsed body of RESP, which must have STATUS and parse as MODEL."""
    if resp.status_code != status:
        fail(f"{what}: HTTP {int(resp.status_code)}, expected {status}: {resp.content.decode(errors='replace')}")
    if not isinstance(resp.parsed, model):
        fail(f"{what}: HTTP {status} but the body parsed as {type(resp.parsed).__name__}, not {model.__name__}")
    log(f"{what}: {status}")
    return resp.parsed


def position(resp: Response[Any]) -> int:
    """The Gatehouse-Position a command's response names, for read-your-writes."""
    value = resp.headers.get("Gatehouse-Position")
    if value is None:
        fail("a command's response has no Gatehouse-Position header")
    return int(value)


def mailed_token(address: str) -> str:
    """The token of the verification mail to ADDRESS (written just after the sign-up answers)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        token = find_token(args.mail_dir, address)
        if token:
            return token
        time.sleep(0.1)
    fail(f"no verification mail to {address} under {args.mail_dir} in 20 s")


anonymous = Client(base_url=args.base_url)

user = expect(
    "POST /v1/users (sign up)",
    sign_up.sync_detailed(client=anonymous, body=SignUpRequest(email=EMAIL, name="Client", password=PASSWORD)),
    201,
    UserView,
)
if user.email != EMAIL or user.email_verified:
    fail(f"the new account: {user.to_dict()}")

session = expect(
    "POST /v1/sessions (sign in)",
    sign_in.sync_detailed(client=anonymous, body=SignInRequest(email=EMAIL, password=PASSWORD)),
    201,
    SessionCreated,
)
owner = AuthenticatedClient(base_url=args.base_url, token=session.token)

# The verification link works only signed in to its own account.
resp = verify_email.sync_detailed(client=owner, body=TokenRequest(token=mailed_token(EMAIL)))
verified = expect("POST /v1/email-verifications", resp, 200, VerifiedView)
if verified.user_id != user.id or verified.email_verified is not True:
    fail(f"the proof: {verified.to_dict()}")
# Read-your-writes: GET /v1/me as of the proof.
myself = expect(
    "GET /v1/me",
    me.sync_detailed(client=owner.with_headers({"Gatehouse-Min-Position": str(position(resp))})),
    200,
    MeView,
).user
if myself.id != user.id or myself.email_verified is not True:
    fail(f"GET /v1/me after the proof: {myself.to_dict()}")

org = expect(
    "POST /v1/orgs",
    create_org.sync_detailed(client=owner, body=CreateOrgRequest(slug="client-org", name="Client org")),
    201,
    OrgView,
)

created: set[str] = set()
last = 0
for n in range(1, TEAMS + 1):
    resp = create_team.sync_detailed(org=org.id, client=owner, body=CreateTeamRequest(name=f"Team {n}"))
    team = expect(f"POST /v1/orgs/{{org}}/teams (Team {n})", resp, 201, TeamView)
    created.add(str(team.id))
    last = max(last, position(resp))

# Every page read as of the last team's creation, so the read model has all.
reader = owner.with_headers({"Gatehouse-Min-Position": str(last)})
seen: list[str] = []
sizes: list[int] = []
cursor: str | Unset = UNSET  # none on the first page
while True:
    if len(sizes) > TEAMS:
        fail(f"more pages than teams: {sizes}")
    page = expect(
        f"GET /v1/orgs/{{org}}/teams?limit={PAGE} (page {len(sizes) + 1})",
        # (An int, though the document types limit as a string today: the
        # query string is the same either way.)
        list_teams.sync_detailed(org=org.id, client=reader, limit=PAGE, cursor=cursor),  # type: ignore[arg-type]
        200,
        PageTeamView,
    )
    sizes.append(len(page.items))
    seen.extend(str(item.id) for item in page.items)
    if not page.next_cursor:  # null or absent: the last page
        break
    cursor = page.next_cursor

expected_sizes = [PAGE] * (TEAMS // PAGE) + ([TEAMS % PAGE] if TEAMS % PAGE else [])
if sizes != expected_sizes:
    fail(f"page sizes {sizes}, expected {expected_sizes}")
if len(seen) != TEAMS or set(seen) != created:
    fail(f"listed {len(seen)} teams {sorted(seen)}, created {TEAMS} {sorted(created)}")
log(f"paged through {len(seen)} teams in {len(sizes)} pages of at most {PAGE} ({sizes})")
log("ok")
