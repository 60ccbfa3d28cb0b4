"""Secret shapes the diagnosis must never send, each beside the diagnostic facts it must keep.

Each case is (medium, text, secrets, kept): the medium says how the text reaches the diagnosis
(``manifest``: a file given to ``-f``; ``log``: a container's log lines; ``event``: an event's
message), ``secrets`` are values planted in the text that must not go out in any form, ``kept``
the facts around them (the error, the exit code, the image, the reason) that must. The shapes are
grouped by the structure that carries them: a Secret's data, a kubeconfig, a credential-named key
in each format (YAML, JSON, env lines, flags, headers, URLs, connection strings, credential
files), programs' password options, prose, and token formats of well-known providers. Token-shaped
values are assembled from parts so that no complete token is written in the repository.
"""

from __future__ import annotations

import base64


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# token formats of well-known providers, assembled from parts
GOOGLE = "AI" + "za" + "SyB3kQ9xLm2Vn8Tp4Wr7Ys1Zc6Df0Gh5Jk7"
GOOGLE_REFRESH = "1//" + "0gXk4Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4Vx"
GOOGLE_OAUTH_SECRET = "GOC" + "SPX-" + "k3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5M"
AZURE_AD_SECRET = "Abc8" + "Q~" + "x9Lm2Vn8Tp4Wr7Ys1Zc6Df0Gh5JkMn3Qr"
TELEGRAM = "5123456789" + ":AA" + "Hk3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4V"
DOCKER_PAT = "dckr" + "_pat_" + "Xk3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5"
VAULT = "hv" + "s." + "CAESIk3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4VxZa"
DATABRICKS = "da" + "pi" + "0123456789abcdef0123456789abcdef"
GRAFANA = "gl" + "sa_" + "Xk3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs_a1b2c3d4"
ANTHROPIC = "sk-" + "ant-api03-" + "Xk3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4VxZa"
NPM = "np" + "m_" + "Xk3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4VxZ"
SENDGRID = "SG" + "." + "Xk3Lm9Qr2Tv7Wy3Bn6Cd8F" + "." + "h1Jk5Mp0Rs4VxZa9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4"
AWS_SESSION = "AS" + "IA" + "Y3KQ7ZP2MX9TR4LN"
AGE = "AGE-SECRET-KEY-" + "15FERYXHRDZ9M6Y09MR8WRERWZGJ6F8NTXVHXYRDLM5AAHN0T09NL4UJY86"  # bech32 characters
AZURE_STORAGE = "k3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4VxZa9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4VxZa9Qr2Tv7Wy3Bn6Cd8F" + "h1=="
SIG = "k3Lm9Qr2Tv7Wy3Bn6Cd8Fh1Jk5Mp0Rs4Vx%2BZa9Q%3D"
KEY_DATA = b64("-----BEGIN RSA PRIVATE KEY-----\nMIIEkubeconfigClientKeyBody\n-----END RSA PRIVATE KEY-----\n")
ENTROPIC = "q8Zr3Xk9Lm2Vn8Tp4Wr7Ys1Zc6Df0Gh5Jk"

SHAPES: list[tuple[str, str, list[str], list[str]]] = [
    # -- a Secret's data, in every way it is written
    (
        "log",
        '2026-12-07T03:12:44Z INFO applying {"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},'
        f'"data":{{"password":"{b64("one-line-json-secret")}"}}}} to the cluster',
        [b64("one-line-json-secret")],
        ["INFO applying", "to the cluster", '"name": "db"'],
    ),
    (
        "log",
        f"""kubectl apply failed: error validating data:
apiVersion: v1
kind: Secret
metadata: {{name: flow}}
data: {{password: {b64("flow-broken-secret-1")},
  username: {b64("flow-broken-user-2")}}}
error: exit status 1""",
        [b64("flow-broken-secret-1"), b64("flow-broken-user-2")],
        ["error: exit status 1", "kind: Secret"],
    ),
    (
        "log",
        f"""{{
  "apiVersion": "v1",
  "kind": "Secret",
  "data": {{
    "tls.key": "{b64("pretty-json-tls-key")}"
  }},
  "type": "kubernetes.io/tls"
}}""",
        [b64("pretty-json-tls-key")],
        ["kubernetes.io/tls"],
    ),
    (
        "manifest",
        """apiVersion: v1
kind: Secret
metadata: {name: string-data}
stringData:
  config.yaml: |
    url: https://api.example.com
    note: block-scalar-string-data-secret
""",
        ["block-scalar-string-data-secret"],
        ["string-data"],
    ),
    (
        "log",
        f"secret/db-creds configured: map[password:{b64('go-map-printed-secret')} user:YXBw]",
        [b64("go-map-printed-secret")],
        ["secret/db-creds configured"],
    ),
    # -- a kubeconfig's credentials
    (
        "manifest",
        f"""apiVersion: v1
kind: Config
clusters:
- cluster: {{server: "https://10.0.0.1:6443", certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t}}
  name: prod
users:
- name: admin
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    client-key-data: {KEY_DATA}
- name: robot
  user: {{token: kubeconfig-static-token-1}}
- name: basic
  user: {{username: ops, password: kubeconfig-basic-password}}
- name: oidc
  user:
    auth-provider:
      name: oidc
      config: {{client-id: k8s, client-secret: oidc-client-secret-1, id-token: oidc-id-token-1,
               refresh-token: oidc-refresh-token-1, idp-issuer-url: "https://issuer.example.com"}}
""",
        [
            KEY_DATA,
            "kubeconfig-static-token-1",
            "kubeconfig-basic-password",
            "oidc-client-secret-1",
            "oidc-id-token-1",
            "oidc-refresh-token-1",
        ],
        ["https://10.0.0.1:6443", "https://issuer.example.com", "client-id: k8s", "username: ops"],
    ),
    (
        "log",
        f"""error: You must be logged in to the server (Unauthorized)
    client-key-data: {KEY_DATA}
    token: kubeconfig-log-token-2""",
        [KEY_DATA, "kubeconfig-log-token-2"],
        ["You must be logged in to the server (Unauthorized)"],
    ),
    # -- credential-named keys: env lines and YAML and JSON keys with suffixes
    (
        "log",
        "+ export SECRET_KEY_BASE=9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c\n+ bundle exec rails s\nexit code 1",
        ["9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c"],
        ["bundle exec rails s", "exit code 1"],
    ),
    ("log", f"env: DB_SECRET_B64={b64('b64-suffixed-secret')} MODE=prod", [b64("b64-suffixed-secret")], ["MODE=prod"]),
    (
        "manifest",
        """apiVersion: v1
kind: ConfigMap
metadata: {name: suffixes}
data:
  API_KEY_V2: suffixed-api-key-v2
  clientSecretJson: suffixed-client-secret-json
  passwordHash: suffixed-password-hash
  TOKEN_TTL: "3600"
""",
        ["suffixed-api-key-v2", "suffixed-client-secret-json", "suffixed-password-hash"],
        ["TOKEN_TTL", "3600"],
    ),
    (
        "log",
        'settings: {"db": {"host": "db", "password": "nested-json-password"}, "retries": 3}',
        ["nested-json-password"],
        ['"retries": 3', '"host": "db"'],
    ),
    (
        "log",
        "app.datasource.password=spring-props-password\napp.datasource.url=jdbc:postgresql://db:5432/shop",
        ["spring-props-password"],
        ["jdbc:postgresql://db:5432/shop"],
    ),
    (
        "log",
        '<property name="password" value="xml-property-password"/> failed to connect',
        ["xml-property-password"],
        ["failed to connect"],
    ),
    ("log", "<password>xml-element-password</password><host>db</host>", ["xml-element-password"], ["<host>db</host>"]),
    (
        "log",
        "Step 4/9 : ENV GITHUB_TOKEN dockerfileEnvTok3n\n ---> Running in 4f2a\nStep 5/9 : RUN make\nmake: *** [build] Error 2",
        ["dockerfileEnvTok3n"],
        ["Step 5/9 : RUN make", "make: *** [build] Error 2"],
    ),
    (
        "log",
        "+ aws configure set aws_secret_access_key awsConfigureSecret9 --profile ci\nAn error occurred (InvalidClientTokenId)",
        ["awsConfigureSecret9"],
        ["--profile ci", "InvalidClientTokenId"],
    ),
    (
        "log",
        "config = { password => 'perl-fat-comma-pw', host => 'db' }; DBI connect failed",
        ["perl-fat-comma-pw"],
        ["host => 'db'", "DBI connect failed"],
    ),
    ("log", 'panic: token := "go-short-decl-token" is not a valid credential', ["go-short-decl-token"], ["panic:"]),
    (
        "log",
        "rendered values:\n  auth:\n    password: |\n      yaml-block-scalar-pw\n      second-line-of-it\n    user: app\nError: INSTALLATION FAILED",
        ["yaml-block-scalar-pw", "second-line-of-it"],
        ["user: app", "Error: INSTALLATION FAILED"],
    ),
    # -- flags
    (
        "log",
        "+ mysql -h db -u root -pMysqlAttachedPw1 -e 'select 1'\nERROR 2003 (HY000): Can't connect to MySQL server",
        ["MysqlAttachedPw1"],
        ["ERROR 2003 (HY000)", "mysql -h db -u root"],
    ),
    (
        "log",
        "+ mysqldump --user=app --password=mysqldump-eq-pw shop > /backup/shop.sql",
        ["mysqldump-eq-pw"],
        ["/backup/shop.sql"],
    ),
    (
        "log",
        "+ sshpass -p 'sshpass-quoted-pw' ssh deploy@10.0.3.4 systemctl restart app\nPermission denied (publickey)",
        ["sshpass-quoted-pw"],
        ["Permission denied (publickey)", "systemctl restart app"],
    ),
    ("log", "+ sshpass -pSshpassAttachedPw scp app.tar deploy@host:/srv", ["SshpassAttachedPw"], ["scp app.tar"]),
    (
        "log",
        "+ docker login -u robot -p DockerLoginPw1 registry.example.com\nError response from daemon: unauthorized",
        ["DockerLoginPw1"],
        ["Error response from daemon: unauthorized", "registry.example.com"],
    ),
    ("log", "+ podman login --username robot --password podman-login-pw quay.io", ["podman-login-pw"], ["quay.io"]),
    (
        "log",
        "+ helm registry login ghcr.io -u bot -p helm-login-pw\nError: unauthorized",
        ["helm-login-pw"],
        ["Error: unauthorized"],
    ),
    (
        "log",
        "#8 [build 2/5] docker build --build-arg NPM_TOKEN=build-arg-npm-token --build-arg VERSION=1.2.3 .",
        ["build-arg-npm-token"],
        ["VERSION=1.2.3"],
    ),
    (
        "log",
        '+ kaniko --build-arg "GITHUB_TOKEN=kaniko-quoted-token" --destination=reg/app:1',
        ["kaniko-quoted-token"],
        ["--destination=reg/app:1"],
    ),
    (
        "log",
        "+ echo 'stdin-registry-pw' | docker login -u robot --password-stdin reg.example.com\nError: denied",
        ["stdin-registry-pw"],
        ["--password-stdin reg.example.com", "Error: denied"],
    ),
    (
        "log",
        "+ echo root:chpasswd-root-pw | chpasswd\nchpasswd: (user root) pam_chauthtok() failed",
        ["chpasswd-root-pw"],
        ["pam_chauthtok() failed"],
    ),
    (
        "log",
        "+ htpasswd -b -c /etc/nginx/.htpasswd admin htpasswd-batch-pw\nAdding password for user admin",
        ["htpasswd-batch-pw"],
        ["Adding password for user admin"],
    ),
    (
        "log",
        "+ redis-cli -h cache -a redis-cli-password PING\n(error) NOAUTH Authentication required.",
        ["redis-cli-password"],
        ["NOAUTH Authentication required"],
    ),
    (
        "log",
        "+ ldapsearch -x -D cn=admin,dc=example,dc=org -w ldap-bind-password -b dc=example,dc=org",
        ["ldap-bind-password"],
        ["cn=admin,dc=example,dc=org"],
    ),
    (
        "log",
        "+ sqlcmd -S db -U sa -P 'SqlcmdPw!23' -Q 'select 1'\nLogin failed for user 'sa'.",
        ["SqlcmdPw!23"],
        ["Login failed for user 'sa'."],
    ),
    (
        "log",
        "+ keytool -importkeystore -srcstorepass keytool-src-pass -deststorepass keytool-dest-pass -keypass keytool-key-pass",
        ["keytool-src-pass", "keytool-dest-pass", "keytool-key-pass"],
        ["-importkeystore"],
    ),
    (
        "log",
        "+ openssl pkcs12 -export -passout pass:openssl-pass-out -in tls.crt",
        ["openssl-pass-out"],
        ["-in tls.crt"],
    ),
    (
        "log",
        "+ mongosh mongodb://db:27017 -u admin -p mongo-shell-pw --authenticationDatabase admin",
        ["mongo-shell-pw"],
        ["--authenticationDatabase admin"],
    ),
    # -- HTTP headers and cookies
    (
        "log",
        "> GET /api/orders HTTP/1.1\n> Cookie: session=cookie-session-value; csrftoken=cookie-csrf-value\n< HTTP/1.1 403 Forbidden",
        ["cookie-session-value", "cookie-csrf-value"],
        ["< HTTP/1.1 403 Forbidden", "GET /api/orders"],
    ),
    (
        "log",
        "< Set-Cookie: sid=set-cookie-sid-value; Path=/; HttpOnly; Secure\n< HTTP/1.1 302 Found",
        ["set-cookie-sid-value"],
        ["HTTP/1.1 302 Found"],
    ),
    (
        "log",
        "+ curl -H 'X-Api-Key: header-api-key-value' -b 'auth=curl-cookie-value' https://api.example.com/v1",
        ["header-api-key-value", "curl-cookie-value"],
        ["https://api.example.com/v1"],
    ),
    (
        "log",
        "headers={'Authorization': 'Token drf-token-value-123', 'Accept': 'application/json'}",
        ["drf-token-value-123"],
        ["'Accept': 'application/json'"],
    ),
    (
        "log",
        "Proxy-Authorization: Basic " + b64("proxy:proxy-basic-pw") + "\nHTTP/1.1 407 Proxy Authentication Required",
        [b64("proxy:proxy-basic-pw")],
        ["407 Proxy Authentication Required"],
    ),
    # -- URLs: userinfo and credential query parameters
    (
        "log",
        f"PUT https://acct.blob.core.windows.net/backups/db.tar?sv=2022-11-02&ss=b&srt=o&sp=rw&se=2026-12-08&sig={SIG} -> 403 AuthenticationFailed",
        [SIG, SIG.split("%")[0]],
        ["403 AuthenticationFailed", "acct.blob.core.windows.net/backups/db.tar", "se=2026-12-08"],
    ),
    (
        "log",
        "GET /oauth/callback?code=4%2F0AfJohXoauth-code-value&state=af0ifjsldkj HTTP/1.1 400",
        ["oauth-code-value"],
        ["/oauth/callback?code=", "HTTP/1.1 400"],
    ),
    (
        "log",
        "redirect to https://app.example.com/#access_token=fragment-access-token&token_type=Bearer&expires_in=3600",
        ["fragment-access-token"],
        ["token_type=Bearer", "expires_in=3600"],
    ),
    (
        "log",
        "GET https://s3.amazonaws.com/b/o?X-Amz-Credential=AKIAEXAMPLE%2F20261207&X-Amz-Signature=amz-presigned-signature-1&X-Amz-Security-Token=amz-session-token-1 403",
        ["amz-presigned-signature-1", "amz-session-token-1"],
        ["s3.amazonaws.com/b/o", "403"],
    ),
    (
        "log",
        "ws://events.example.com/stream?apikey=ws-query-api-key&channel=builds closed: 1008",
        ["ws-query-api-key"],
        ["channel=builds closed: 1008"],
    ),
    (
        "log",
        "git fetch https://oauth2:gitlab-oauth2-token@gitlab.example.com/g/p.git: 401",
        ["gitlab-oauth2-token"],
        ["gitlab.example.com/g/p.git: 401"],
    ),
    (
        "log",
        "redis://:redis-url-password@cache.shop.svc:6379/0 refused",
        ["redis-url-password"],
        ["@cache.shop.svc:6379/0 refused"],
    ),
    # -- connection strings
    (
        "log",
        "+ sqlplus scott/oracle-sqlplus-pw@ORCLPDB1 @migrate.sql\nORA-12154: TNS:could not resolve the connect identifier",
        ["oracle-sqlplus-pw"],
        ["ORA-12154", "@migrate.sql", "ORCLPDB1"],
    ),
    (
        "log",
        "jdbc:oracle:thin:app/oracle-jdbc-pw@//db.example.com:1521/SHOP ORA-01017: invalid username/password",
        ["oracle-jdbc-pw"],
        ["ORA-01017: invalid username/password", "db.example.com:1521/SHOP"],
    ),
    ("log", "+ expdp system/expdp-manager-pw@prod schemas=SHOP directory=DUMP", ["expdp-manager-pw"], ["schemas=SHOP"]),
    (
        "log",
        "jdbc:sqlserver://db:1433;databaseName=shop;user=sa;password=jdbc-semicolon-pw;encrypt=true login failed",
        ["jdbc-semicolon-pw"],
        ["databaseName=shop", "encrypt=true login failed"],
    ),
    (
        "log",
        "Server=tcp:db.database.windows.net;Database=shop;User ID=app;Password=ado-net-pw;Encrypt=True timeout",
        ["ado-net-pw"],
        ["Database=shop", "Encrypt=True timeout"],
    ),
    (
        "log",
        f"DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey={AZURE_STORAGE};EndpointSuffix=core.windows.net",
        [AZURE_STORAGE],
        ["AccountName=shopdata", "EndpointSuffix=core.windows.net"],
    ),
    (
        "log",
        "psql: error: connection to server failed: host=db user=app password=libpq-kv-password dbname=shop",
        ["libpq-kv-password"],
        ["connection to server failed", "dbname=shop"],
    ),
    (
        "log",
        "mongodb+srv://admin:mongo-srv-pw@cluster0.example.mongodb.net/?retryWrites=true: auth failed",
        ["mongo-srv-pw"],
        ["auth failed"],
    ),
    # -- credential files
    (
        "manifest",
        """apiVersion: v1
kind: ConfigMap
metadata: {name: netrc}
data:
  .netrc: |
    machine github.com login bot password netrc-inline-password
    machine gitlab.com
      login ci
      password netrc-multiline-password
""",
        ["netrc-inline-password", "netrc-multiline-password"],
        ["machine github.com login bot", "login ci"],
    ),
    (
        "log",
        'db.shop.svc:5432:shop:app:pgpass-line-password\n*:*:*:replicator:pgpass-wild-password\nFATAL: password authentication failed for user "app"',
        ["pgpass-line-password", "pgpass-wild-password"],
        ['FATAL: password authentication failed for user "app"'],
    ),
    (
        "manifest",
        """apiVersion: v1
kind: ConfigMap
metadata: {name: npmrc}
data:
  .npmrc: |
    registry=https://npm.example.com/
    //npm.example.com/:_authToken=npmrc-auth-token-value
    //npm.example.com/:_password=npmrc-password-value
""",
        ["npmrc-auth-token-value", "npmrc-password-value"],
        ["registry=https://npm.example.com/"],
    ),
    (
        "log",
        f"pip config: [global]\nindex-url = https://__token__:{b64('pypi-index-token')}@pypi.example.com/simple",
        [b64("pypi-index-token")],
        ["pypi.example.com/simple"],
    ),
    (
        "log",
        '{"auths": {"registry.example.com": {"auth": "'
        + b64("robot:dockercfg-json-pw")
        + '", "email": "ci@example.com"}}}',
        [b64("robot:dockercfg-json-pw")],
        ["registry.example.com", "ci@example.com"],
    ),
    # -- prose
    (
        "log",
        "hint: set the password 'prose-quoted-password' in values.yaml and retry",
        ["prose-quoted-password"],
        ["in values.yaml and retry"],
    ),
    ("log", "the admin password is ProseIsPassword9 (change it)", ["ProseIsPassword9"], ["(change it)"]),
    (
        "log",
        "ALTER USER app WITH PASSWORD 'sql-alter-password'; ERROR: permission denied",
        ["sql-alter-password"],
        ["ERROR: permission denied"],
    ),
    (
        "log",
        "CREATE USER 'app'@'%' IDENTIFIED BY 'mysql-identified-pw'; ERROR 1396",
        ["mysql-identified-pw"],
        ["ERROR 1396"],
    ),
    (
        "event",
        'Warning Failed: wrong password: passphrase "event-prose-passphrase" does not decrypt the key',
        ["event-prose-passphrase"],
        ["does not decrypt the key"],
    ),
    # -- token formats of well-known providers, with no name beside them
    (
        "log",
        f"googleapi: Error 400: API key expired. Renew the API key. {GOOGLE}",
        [GOOGLE],
        ["Error 400: API key expired"],
    ),
    ("log", f"oauth2: refresh {GOOGLE_REFRESH} invalid_grant", [GOOGLE_REFRESH], ["invalid_grant"]),
    ("log", f"client {GOOGLE_OAUTH_SECRET} rejected", [GOOGLE_OAUTH_SECRET], ["rejected"]),
    ("log", f"AADSTS7000215: Invalid client secret provided ({AZURE_AD_SECRET})", [AZURE_AD_SECRET], ["AADSTS7000215"]),
    ("log", f"telegram notify failed: bot{TELEGRAM}/sendMessage 401", [TELEGRAM], ["sendMessage 401"]),
    ("log", f"pushing with {DOCKER_PAT}: denied", [DOCKER_PAT], ["denied"]),
    (
        "log",
        f"vault: permission denied for {VAULT} on secret/data/app",
        [VAULT],
        ["permission denied", "secret/data/app"],
    ),
    ("log", f"databricks: 403 for {DATABRICKS}", [DATABRICKS], ["databricks: 403"]),
    ("log", f"grafana push: {GRAFANA} unauthorized", [GRAFANA], ["unauthorized"]),
    ("log", f"anthropic.AuthenticationError: invalid x-api-key {ANTHROPIC}", [ANTHROPIC], ["AuthenticationError"]),
    ("log", f"npm ERR! 401 with {NPM}", [NPM], ["npm ERR! 401"]),
    ("log", f"sendgrid: {SENDGRID} forbidden", [SENDGRID], ["forbidden"]),
    ("log", f"aws: session {AWS_SESSION} ExpiredToken", [AWS_SESSION], ["ExpiredToken"]),
    ("log", f"sops: no key could decrypt the data ({AGE})", [AGE], ["no key could decrypt the data"]),
    # -- a high-entropy string beside a credential word
    (
        "log",
        f"auth failed for client with credential {ENTROPIC} at 03:12",
        [ENTROPIC],
        ["auth failed for client", "at 03:12"],
    ),
    (
        "event",
        f"Warning FailedMount: MountVolume.SetUp failed: token {ENTROPIC[::-1]} rejected by the CSI driver",
        [ENTROPIC[::-1]],
        ["MountVolume.SetUp failed", "rejected by the CSI driver"],
    ),
]

# What real failures' evidence holds and a diagnosis needs: digests, uids, versions, timestamps,
# ids, non-secret base64. A redaction here is a false positive.
FACTS: list[str] = [
    'Failed to pull image "registry.example.com/app@sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904a1b2c3d4e5f60718293a4b5c"',
    "containerID: containerd://8e1f0a3c4b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
    "imageID: docker.io/library/busybox@sha256:1487d0af5f52b4ba31c7e465126ee2123fe3f2305d638e7827681e7cf6c83d5e",
    "uid: 5f1c6a0e-8d2b-4c1e-9a7f-3b2d1e0c9f8a",
    'resourceVersion: "918273"',
    'creationTimestamp: "2026-12-07T03:12:44Z"',
    "commit 3f9a1c2b7e4d5f60718293a4b5c6d7e8f9012345 broke the build",
    'Back-off pulling image "ghcr.io/org/app:v1.4.2"',
    "Error: couldn't find key API_KEY in Secret shop/app-secrets",
    'MountVolume.SetUp failed for volume "tls" : secret "checkout-tls" not found',
    'FATAL: password authentication failed for user "app"',
    "secretKeyRef: {name: app-secrets, key: API_KEY}",
    "token_type=Bearer expires_in=3600",
    "workflows.argoproj.io/node-id: deploy-x7k2q-2837465019",
    "tekton.dev/pipelineRun: build-run-8fk2l",
    "binaryData: {logo.png: iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==}",
    "ca.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lCQURBS0JnZ3Foa2pPUFFRREFqQWpN",
    "OOMKilled: container app exceeded its memory limit 256Mi, exit code 137",
    "max_tokens: 4096",
    "password authentication is disabled; use a key",
    "git-sha: 3f9a1c2",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "requestId: 7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "x-request-id: 0f8fad5b-d9cb-469f-a165-70867728950e",
    "the token expired at 2026-12-07T03:00:00Z; renew it",
    "ssh-keygen -lf key.pub: SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8 (ED25519)",
    # the words of the kubelet, the controllers and common tools when authentication fails
    "Successfully assigned diagnose/worker to kind-control-plane",
    "Back-off restarting failed container app in pod worker_diagnose(5f1c6a0e-8d2b-4c1e-9a7f-3b2d1e0c9f8a)",
    'MountVolume.SetUp failed for volume "kube-api-access-x2x9z" : object "diagnose"/"kube-root-ca.crt" not registered',
    "Error (exit code 1): failed to save outputs: key: artifacts/qa-abc/qa-abc-3716284905/main.log",
    'TaskRun "build-run-x7k2q" failed to finish within "1h0m0s"',
    'Pod "web-1" is invalid: spec.containers[0].env[1].valueFrom.secretKeyRef.key: Required value',
    'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/invalid:latest"',
    'Readiness probe failed: Get "http://10.42.0.17:8080/healthz": dial tcp 10.42.0.17:8080: connect: connection refused',
    "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available",
    "ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain",
    "remote: Invalid username or password.",
    "fatal: Authentication failed for 'https://github.com/org/repo.git/'",
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password',
    "npm ERR! Unable to authenticate, your authentication token seems to be invalid.",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "checksum/config: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "pod-template-hash: 7c9f8d6b5, controller-revision-hash: web-6d4cf56db6",
    'x509: certificate signed by unknown authority (possibly because of "crypto/rsa: verification error")',
    "existingSecret: postgres-credentials",
    "automountServiceAccountToken: false",
    'Warning FailedCreate: Error creating: pods "web-7f9c" is forbidden: error looking up service account shop/deployer',
    "token: $(params.token), password: {{inputs.parameters.password}}",
    "the key 'password' of Secret shop/db is missing",
    "Authentication token expired for service account default; the kubelet will rotate it",
]


def corpus_count() -> int:
    """How many secret values the shapes plant."""
    return sum(len(secrets) for _, _, secrets, _ in SHAPES)
