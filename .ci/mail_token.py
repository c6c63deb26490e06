"""The token of the email-verification link that a Gatehouse server mailed.

Without --smtp-url the server writes each mail as a .eml file under
<data-dir>/mail; the CI steps (.ci/schemathesis.sh, .ci/client_flow.py) read
the link from there to prove an account's address as its owner would.

    python3 .ci/mail_token.py MAIL_DIR ADDRESS

prints the token of the first such mail to ADDRESS, or nothing when none is
there (yet: the mail is written after the sign-up answers, so callers poll).
Standard library only: it runs on the machine's python3 too.
"""

from __future__ import annotations

import email
import email.policy
import glob
import re
import sys


def find_token(mail_dir: str, address: str) -> str | None:
    for path in sorted(glob.glob(mail_dir + "/*.eml")):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        if address in str(msg["To"] or ""):
            m = re.search(r"/verify-email\?token=([A-Za-z0-9_-]+)", msg.get_body(("plain",)).get_content())
            if m:
                return m.group(1)
    return None


if __name__ == "__main__":
    token = find_token(sys.argv[1], sys.argv[2])
    if token:
        print(token)
