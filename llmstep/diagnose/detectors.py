"""The second pass of redaction: secrets recognised by what they look like, not by where they are.

The structural pass (:mod:`llmstep.diagnose.redact`, :mod:`llmstep.diagnose.secretforms`) masks
what a structure says is a secret. What is left may still hold a secret with no name beside it:
a provider's token pasted into an error message, a key in prose. Two detectors catch those:

- :data:`TOKEN_FORMATS`: the documented formats of well-known providers' keys and tokens
  (prefixes and lengths as the providers publish them, the way detect-secrets' and gitleaks'
  rules write them);
- :func:`high_entropy`: a string that looks random (long, mixed classes of characters, high
  Shannon entropy) on a line that speaks of a credential. Digests, UUIDs, Kubernetes names and
  timestamps are evidence, not secrets, and are left alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

_B = r"(?<![A-Za-z0-9_-])"  # a token starts at a boundary
_E = r"(?![A-Za-z0-9_-])"

TOKEN_FORMATS: list[re.Pattern[str]] = [
    re.compile(p)
    for p in [
        # model providers: OpenAI and Anthropic (sk-, sk-proj-, sk-ant-), Groq, Replicate, Hugging Face
        r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}",
        rf"{_B}gsk_[A-Za-z0-9]{{20,}}",
        rf"{_B}r8_[A-Za-z0-9]{{20,}}",
        rf"{_B}hf_[A-Za-z0-9]{{30,}}",
        # source hosting and registries: GitHub, GitLab, npm, PyPI, RubyGems, Docker Hub
        rf"{_B}(?:gh[pousr]_[A-Za-z0-9]{{20,}}|github_pat_[A-Za-z0-9_]{{20,}})",
        rf"{_B}gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent|ffct)-[A-Za-z0-9_-]{{20,}}",
        rf"{_B}npm_[A-Za-z0-9]{{30,}}",
        rf"{_B}pypi-AgE[A-Za-z0-9_-]{{50,}}",
        rf"{_B}rubygems_[a-f0-9]{{48}}",
        rf"{_B}dckr_pat_[A-Za-z0-9_-]{{20,}}",
        # chat and mail: Slack, Telegram bots, SendGrid, Mailgun, Postman
        r"(?<![A-Za-z0-9])(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}",
        r"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{32,}",
        r"(?<![A-Za-z0-9])SG\.[\w-]{16,}\.[\w-]{16,}",
        rf"{_B}key-[0-9a-z]{{32}}{_E}",
        rf"{_B}PMAK-[0-9a-f]{{24}}-[0-9a-f]{{34}}",
        # Google (API keys, OAuth client secrets, access and refresh tokens) and Azure AD client secrets
        rf"{_B}AIza[0-9A-Za-z_-]{{30,40}}",
        r"(?<![A-Za-z0-9])ya29\.[0-9A-Za-z_-]{20,}",
        rf"{_B}GOCSPX-[0-9A-Za-z_-]{{20,}}",
        r"(?<![A-Za-z0-9/])1//0[0-9A-Za-z_-]{30,}",
        r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}",
        # cloud: AWS access key ids, Alibaba, Databricks, DigitalOcean, Grafana, HashiCorp Vault,
        # Terraform Cloud, Doppler, Pulumi, Atlassian, New Relic, Tailscale, Shopify, Square, Stripe
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        rf"{_B}LTAI[A-Za-z0-9]{{12,24}}{_E}",
        rf"{_B}dapi[0-9a-f]{{32}}(?:-[0-9]+)?{_E}",
        rf"{_B}do[por]_v1_[a-f0-9]{{64}}",
        rf"{_B}gl(?:sa|c)_[A-Za-z0-9_+/=-]{{32,}}",
        r"(?<![A-Za-z0-9])hv[sbr]\.[A-Za-z0-9_-]{24,}",
        r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}",
        r"(?<![A-Za-z0-9])dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}",
        rf"{_B}pul-[a-f0-9]{{40}}",
        rf"{_B}ATATT3[A-Za-z0-9_=-]{{100,}}",
        rf"{_B}NRAK-[A-Z0-9]{{27}}",
        rf"{_B}tskey-[a-z]+-[A-Za-z0-9]{{10,}}-[A-Za-z0-9]{{10,}}",
        rf"{_B}shp(?:at|ss|ca|pa)_[a-fA-F0-9]{{32}}",
        rf"{_B}sq0(?:atp|csp)-[0-9A-Za-z_-]{{22,}}",
        rf"{_B}(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{{16,}}|whsec_[0-9A-Za-z]{{20,}})",
        # other services: Linear, Notion, Supabase, Figma, Sentry, PlanetScale, Twilio API keys
        rf"{_B}lin_api_[A-Za-z0-9]{{32,}}",
        rf"{_B}ntn_[A-Za-z0-9]{{40,}}",
        rf"{_B}sbp_[a-f0-9]{{40}}",
        rf"{_B}figd_[A-Za-z0-9_-]{{30,}}",
        rf"{_B}sntry[su]_[A-Za-z0-9+/=_-]{{30,}}",
        rf"{_B}pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{{30,}}",
        rf"{_B}SK[0-9a-f]{{32}}{_E}",
        # age and JWTs (a Kubernetes service account token is one)
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        # an AWS secret access key: 40 characters of base64 with upper, lower and digits (a git sha or
        # a sha256 digest is lowercase hex and never matches)
        r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[0-9])"
        r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    ]
]

# -------------------------------------------------------------------------- high entropy

_CREDENTIAL_WORD = re.compile(
    r"(?i)pass(?:word|wd|phrase)?|pwd|secret|token|credential|auth|api[ _-]?key|private[ _-]?key|access[ _-]?key"
    r"|cookie|session|signature|bearer|(?<![\w-])key(?![\w-])"
)
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/=_~.-])[A-Za-z0-9+/=_~.-]{20,}(?![A-Za-z0-9+/=_~.-])")
_DIGEST_BEFORE = re.compile(r"(?i)(?:sha\d*|md5|digest|@|commit|://)[:= ]?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_NAME_LIKE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # a Kubernetes name, a host, a version
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}")
_PATH_LIKE = re.compile(r"[a-z]\.[a-z]{2,}(?:[/.:]|$)")
ENTROPY = 3.5
"""Bits per character above which a 20-character string looks random (English words score near
3, base64 of random bytes near 6, a 20-character hex digest near 3.7)."""


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_random(token: str) -> bool:
    """Whether ``token`` looks like a generated secret rather than a name, a digest or a date."""
    core = token.strip("=.-_~")
    if len(core) < 20 or _UUID.match(core) or _NAME_LIKE.match(core) or _TIMESTAMP.match(core):
        return False
    if _HEX.match(core) and len(core) in (32, 40, 64, 128):  # md5, git sha, sha256, sha512: digests
        return False
    if core.startswith("/") or "//" in core or _PATH_LIKE.search(core):  # a path, a URL, a host or a file
        return False
    # generated secrets mix letters and digits (20 random base64 characters lack a digit 3% of the time)
    if not (re.search("[0-9]", core) and re.search("[A-Za-z]", core)):
        return False
    return entropy(core) >= ENTROPY


def high_entropy(text: str, mask: Callable[[str], str]) -> str:
    """Mask each random-looking string on a line that speaks of a credential (``mask`` gives the
    replacement); a digest after ``sha256:`` or ``@``, a UUID, a name and a timestamp stay."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not _CREDENTIAL_WORD.search(line):
            continue

        def one(match: re.Match[str], line: str = line) -> str:
            if _DIGEST_BEFORE.search(line[: match.start()]) or not looks_random(match.group(0)):
                return match.group(0)
            return mask(match.group(0))

        lines[i] = _CANDIDATE.sub(one, line)
    return "\n".join(lines)
