"""Where a secret sits in text: the forms that name a value a credential, in every notation.

One rule says which names hold secrets (:data:`SECRET_NAME`); each form below says how a name and
its value are written: ``NAME=V`` and ``name: V`` (env lines, YAML, JSON, INI, properties, a
connection string's ``key=value;``), ``--flag V``, XML elements and attributes, HTTP headers and
cookies, URL userinfo and query parameters, Oracle's ``user/password@db``, credential files
(``.netrc``, ``.pgpass``, ``.npmrc``), the password options of common programs (``mysql -pPASS``,
``sshpass -p``, ``docker login -p``, ``redis-cli -a``), and a password stated in prose. Each form
is a pattern whose first group is kept (the name, the flag, the user) and whose rest is masked.
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

# One rule for "this name says its value is a secret": env vars, map keys, parameters, flags and
# NAME=V text. A secret word ends the name, or is followed only by an encoding or version suffix
# (DB_SECRET_B64, SECRET_KEY_BASE, client-key-data, API_KEY_V2), so DB_PASSWORD, GITHUB_TOKEN,
# MYSQL_PWD and registry-password match, and secretKeyRef, secretName, max_tokens, TOKEN_TTL and
# PASSWORD_FILE do not.
_START = r"(?:(?<=[_.-])|(?<![\w.-]))"  # at the start of a part of the name
SECRET_END = (
    rf"(?:password|passwd|passphrase|{_START}(?:pass|pwd|pw|auth)|(?:store|key)pass|secret|token|api[_-]?key|apikey|"
    r"credentials?|[_.-]key|(?:access|account|secret|private|signing|master|encryption|storage)key|"
    r"dockerconfigjson|dockercfg|htpasswd|cookie)"
)
_SUFFIX = (
    r"(?:[_.-]?(?:b64|base64|enc|encoded|encrypted|hex|raw|value|json|base|str|string|data|hash|bytes|plain|v\d+|\d+))"
)
# ... unless it names where a secret is: valueFrom.secretKeyRef.key, existingSecret (a Helm chart's
# name of a Secret)
_NOT_A_PLACE = r"(?![\w.-]*?ref[_.-])(?!existing[_-]?)"
SECRET_NAME = re.compile(rf"(?i)^{_NOT_A_PLACE}[\w.-]*?{SECRET_END}{_SUFFIX}{{0,2}}$")
"""A name (env var, key, parameter, flag without its dashes) whose value is a secret."""
_NAME = rf"{_NOT_A_PLACE}[\w.-]*?{SECRET_END}{_SUFFIX}{{0,2}}"

# A value that is a reference, not a secret: keep it, it is evidence (which param, which env).
REFERENCE = re.compile(r"^\s*(?:\$\([^)]*\)|\$\{[^}]*\}|\{\{[^}]*\}\}|<set to [^>]*>|\[REDACTED\])\s*$")
_KEEP = r"[\"']?(?:[{\[]|<set to|\$\(|\$\{|(?:null|true|false|none|~)(?![\w-]))|[|>][-+]?[ \t]*(?:\n|$)"
_VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s'\",;&})\]<]+)"

# programs' own password options: (the program, its option); the option's value is the password
_PROGRAM_FLAGS = [
    (r"mysql\w*|mariadb[\w-]*", r"-p(?=[^\s-])"),  # attached only: "mysql -p db" prompts and names a database
    (r"sshpass", r"-p[ \t]*"),
    (r"login", r"-p[ \t]*"),  # docker, podman, helm registry, buildah, skopeo, oras, az
    (r"redis-cli", r"-a[ \t]+"),
    (r"ldap\w+", r"-w[ \t]+"),
    (r"sqlcmd|bcp|isql|osql", r"-P[ \t]*"),
    (r"mongo\w*", r"-p[ \t]+"),
    (r"zip", r"-P[ \t]+"),
    (r"7za?|unrar", r"-p(?=\S)"),
    (r"curl", r"(?:-b|--cookie|--oauth2-bearer)[ \t]+"),
    (r"smbclient|rpcclient", r"-U[ \t]*[^\s%]+%"),
    (r"kubectl|oc", r"--from-literal[ =][\w.-]+="),  # kubectl create secret generic --from-literal=k=V
    (r"htpasswd", r"-\w*b\w*(?:[ \t]+-\w+)*[ \t]+\S+[ \t]+\S+[ \t]+"),  # htpasswd -b [-c] FILE USER PASSWORD
]

FORMS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(p, f), keep)
    for p, f, keep in [
        # every PEM private-key kind and PGP private key blocks; a block cut off by a log tail too
        (
            r"(-{4,5} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5})(?!\s*\[REDACTED\])(?:(?!-{4,5} ?END|\n\n## ).)+"
            r"(?=-{4,5} ?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}|\n\n## |\Z)",
            re.S,
            1,
        ),
        # HTTP credentials: Authorization headers (any scheme), Basic and Bearer, cookies to the end of the header
        (
            r"(?i)((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:[a-z-]+[ \t]+)?)(?![\"']?\[REDACTED\])[^\s\"',;]+",
            0,
            1,
        ),
        (r"(?i)((?<![\w-])(?:bearer|basic)[ \t]+)(?!\[REDACTED\]|[A-Za-z_]+=[^=])[A-Za-z0-9._~+/=-]{8,}", 0, 1),
        (r"(?i)((?<![\w-])token[ \t]+)(?!\[REDACTED\])(?=[A-Za-z0-9._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}", 0, 1),
        (r"(?i)((?<![\w-])(?:set-)?cookie2?[\"']?[ \t]*[:=][ \t]*[\"']?)(?!\[REDACTED\])[^\n\"']+", 0, 1),
        # webhook URLs whose path is the credential
        (r"(?i)(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+", 0, 1),
        (r"(?i)(https://(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks/)[\w/-]+", 0, 1),
        (r"(?i)(https://[\w.-]+\.webhook\.office\.com/)[\w/@-]+", 0, 1),
        # {name: DB_PASSWORD, value: V} as JSON or YAML text: env, params (a document that is not YAML)
        (
            rf"(?i)(\bname[\"']?[ \t]*:[ \t]*[\"']?{_NAME}[\"']?[ \t]*(?:,[ \t]*|\n[ \t]*)[\"']?"
            rf"(?:value|default)[\"']?[ \t]*:[ \t]*)(?!{_KEEP}){_VALUE}",
            0,
            1,
        ),
        # XML: <password>V</password>, name="password" value="V"
        (rf"(?i)(<({_NAME})>)[^<]+(?=</\2>)", 0, 1),
        (rf"(?i)((?:name|key)=[\"']{_NAME}[\"'][ \t]+value=[\"'])[^\"']*", 0, 1),
        # URL query and fragment parameters that carry a credential (OAuth codes, SAS and presigned signatures)
        (
            r"(?i)([?&#;](?:code|sig|signature|x-amz-signature|x-goog-signature|x-goog-credential|sessionid|sid|session|key)=)"
            r"(?!\[REDACTED\])[^&#\s\"'<>]+",
            0,
            1,
        ),
        # prose: password 'V', the password is V, IDENTIFIED BY 'V'
        (
            r"(?i)(\b(?:pass(?:word|phrase)?|passwd|pwd|identified by)[ \t]+(?:(?:is|was|of|set to|=|:)[ \t]+)?)"
            r"(?!\[REDACTED\])(\"[^\"\n]+\"|'[^'\n]+'|`[^`\n]+`)",
            0,
            1,
        ),
        (
            r"(?i)(\b(?:password|passphrase|passwd|secret|token)[ \t]+(?:is|was|set to)[ \t]+)(?!\[REDACTED\])"
            r"(?!(?:not|too|incorrect|invalid|wrong|expired|missing|required|empty|correct|valid|null|none|blank|unset|being|"
            r"the|a|an|set|stored|configured|present|needed|already|now|still)\b)([^\s,;.]+)",
            0,
            1,
        ),
        # name: | or name: >- and the value on the indented lines below (YAML block scalars in text)
        (
            rf"(?im)(^([ \t]*)[-\"' \t]*{_NAME}[\"']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*\n)(\2[ \t]+(?!\[REDACTED\]).*(?:\n\2[ \t]+.*)*)",
            0,
            1,
        ),
        # NAME=V, name: V, "name": "V", INI name = V, ?name=V in a query, k=v; in a connection string,
        # Ruby's and Perl's name => V, Go's name := V
        (rf"(?i)(?<![\w.-])({_NAME}[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*)(?!{_KEEP}){_VALUE}", 0, 1),
        # NAME V, for a name that is a secret's whole name (GITHUB_TOKEN, aws_secret_access_key): a
        # Dockerfile's ENV, aws configure set; a value that is a word (is, missing, Environment) stays
        (
            rf"((?<![\w.-])(?i:(?=\w*[_.-])[\w.-]*?{SECRET_END}{_SUFFIX}{{0,2}})[ \t]+)(?!\[REDACTED\]|-)"
            rf"(?=[\"']|\S*[0-9!@#$%^*+/~]|\S[a-z]*[A-Z]|\S{{16}})([^\s'\",;]+|\"[^\"\n]*\"|'[^'\n]*')",
            0,
            1,
        ),
        # a multi-word key of a connection string or a properties file: "User Password=V"
        (
            r"(?i)((?<![\w-])(?:user |account )?(?:password|pwd)[ \t]*=(?!>)[ \t]*)(?![\"']?\[REDACTED\])([^;\s\"']+)",
            0,
            1,
        ),
        # --password V, "--password", "V", and kubectl describe's one argument per line
        (
            rf"(?i)(?<![\w-])(--?{_NAME}[\"']?(?:[ \t]*,[ \t]*|[ \t]+|[ \t]*\n[ \t]*(?:-[ \t]+)?))"
            rf"(?![\"']?-|{_KEEP}){_VALUE}",
            0,
            1,
        ),
        # curl -u user:password (the user stays)
        (r"(?<![\w-])((?:-u|--user|--proxy-user|-U)(?:[ \t]+|=)[\"']?[^\s:\"'=]+:)(?!\[REDACTED\])[^\s\"']+", 0, 1),
        # programs' password options; openssl's pass:V
        *[
            (rf"(\b(?:{program})\b[^\n]{{0,500}}?(?<![\w-]){flag})(?!\[REDACTED\]){_VALUE}", 0, 1)
            for program, flag in _PROGRAM_FLAGS
        ],
        (r"((?<![\w-])pass:)(?!\[REDACTED\])([^\s\"']+)", 0, 1),
        # echo V | docker login --password-stdin, echo user:V | chpasswd
        (
            rf"(\becho[ \t]+(?:-[ne][ \t]+)?)(?!\[REDACTED\]|\$){_VALUE}(?=[ \t]*\|[^\n]{{0,200}}?(?:--password-stdin|\bchpasswd\b))",
            0,
            1,
        ),
        # Oracle user/password@db: after an Oracle tool or keyword, in a JDBC URL, or before //host or host:port
        (
            r"(?i)(\b(?:sqlplus|sqlldr|expdp|impdp|exp|imp|rman|dgmgrl|connect|conn)\b[^\n]{0,500}?(?<![\w./@:-])[\w$#]+/)"
            r"(?!\[REDACTED\])[^\s/@\"']+(?=@)",
            0,
            1,
        ),
        (r"(?i)(jdbc:oracle:\w+:[\w$#]+/)(?!\[REDACTED\])[^\s/@\"']+(?=@)", 0, 1),
        (r"((?<![\w./@:-])[\w$#]+/)(?!\[REDACTED\])[^\s/@\"']+(?=@(?!sha\d*:)(?://|[\w.-]+:\d))", 0, 1),
        # credential files: .netrc (machine h login u password p, one line or several), .pgpass
        (r"(?i)(\b(?:machine|login|default)\b[^\n]{0,500}?\b(?:password|account)[ \t]+)(?!\[REDACTED\])(\S+)", 0, 1),
        (r"(?im)(^[ \t]*(?:password|passwd)[ \t]+)(?!\[REDACTED\])(\S+)[ \t]*$", 0, 1),
        (r"(?m)(^[ \t]*(?:[^:\s\\]|\\.)+:(?:\d+|\*):(?:[^:\s\\]|\\.)+:(?:[^:\s\\]|\\.)+:)(?!\[REDACTED\])(\S+)$", 0, 1),
    ]
]
# scheme://userinfo@host: everything up to the last '@' before the host ("p@ss" is one password)
# (a scheme is short: an unbounded one makes "a.a.a..." quadratic)
URL_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}://)([^\s/?#\"'<>]*)@")
