# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The token most modules log in with; the connection options come with CONNECTION.
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - Access token used for the API calls.
      - If not set, the environment variable E(FORGEJO_TOKEN) is used.
      - Instance scope needs a token with C(read:admin) (reading) or C(write:admin) (changing);
        organisation, user and repository scopes need the matching C(organization), C(user) or C(repository) scopes.
    type: str
    required: true
notes:
  - The connection options and O(api_token) can be set once for the runner modules with C(module_defaults) and
    the action group C(group/foundation.runners.forgejo); M(foundation.runners.forgejo_access_token), which logs
    in with a password instead, is not in that group.
"""

    CONNECTION = r"""
options:
  api_url:
    description:
      - Base URL of the Forgejo server, for example C(https://forge.example.org).
      - C(/api/v1) is appended when missing.
      - If not set, the environment variable E(FORGEJO_URL) is used.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the server's TLS certificate.
    type: bool
    default: true
  allow_insecure_http:
    description:
      - Accept a plain C(http://) O(api_url). Tokens then cross the network readable, so the modules refuse it
        unless this is set, for a forge on the same host or a trusted link (the collection's lab sets it).
      - If not set, the environment variable E(FORGEJO_ALLOW_INSECURE_HTTP) is used.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 30
  retries:
    description:
      - How often a safe request (C(GET)) is retried with exponential backoff after a connection error
        or a 429, 502, 503 or 504 answer. Requests that change state are never retried.
    type: int
    default: 3
notes:
  - The server's version is read from C(/api/v1/version). Forgejo 7 to 15 are supported; runner listing,
    registration and deletion need Forgejo 15. Gitea 1.24 or later also answers the listing and deletion calls.
"""

    # A user's own login, for the calls that accept nothing else (creating that user's access tokens).
    LOGIN = r"""
options:
  api_username:
    description:
      - The user whose login is used, and whose tokens are managed.
      - If not set, the environment variable E(FORGEJO_USERNAME) is used.
    type: str
    required: true
  api_password:
    description:
      - That user's password, a secret; keep it in a vault and set C(no_log) where it is templated.
      - If not set, the environment variable E(FORGEJO_PASSWORD) is used.
    type: str
    required: true
"""

    ON_UNSUPPORTED = r"""
options:
  on_unsupported:
    description:
      - What to do on a server that lacks the runners API the module needs (Forgejo before 15).
      - V(fail) fails, naming the server's version. V(skip) ends the module unchanged with RV(supported=false),
        the C(reason), and empty results, so that a playbook can say in one line what it skipped and why.
    type: str
    choices: [fail, skip]
    default: fail
"""

    SCOPE = r"""
options:
  scope:
    description:
      - Which runners to work on.
      - V(instance) is the whole server (needs an admin token), V(org) one organisation, V(user) the token's
        own user, V(repo) one repository.
    type: str
    choices: [instance, org, user, repo]
    default: instance
  org:
    description:
      - Organisation name. Required with O(scope=org), refused otherwise.
    type: str
  repo:
    description:
      - Repository as C(OWNER/NAME). Required with O(scope=repo), refused otherwise.
    type: str
"""
