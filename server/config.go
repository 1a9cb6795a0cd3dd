package server

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("server: bad configuration")

// Config is the reference server's configuration. Every field is read from the
// environment variable in its env tag, and a command-line flag of the same name
// (lower case, without the SAASKIT_ prefix, with dashes) overrides it. The
// default tag is the value used when neither is set; the zero Config passed
// through [Config.Defaults] holds the defaults.
type Config struct {
	Addr        string `env:"SAASKIT_ADDR" default:":8080" help:"address the HTTP server listens on"`
	DatabaseURL string `env:"SAASKIT_DATABASE_URL" default:"saaskit.db" help:"SQLite file path, or postgres://user@host/db for Postgres"`
	// MigrateDatabaseURL, when set, is used for migrations (the table owner),
	// while DatabaseURL is an unprivileged role.
	MigrateDatabaseURL string `env:"SAASKIT_MIGRATE_DATABASE_URL" default:"" help:"Postgres URL of the table owner for migrations; empty: DatabaseURL"`
	DBAppRole          string `env:"SAASKIT_DB_APP_ROLE" default:"saaskit_app" help:"Postgres role that tenant transactions SET LOCAL ROLE to when connected as the table owner; empty disables"`
	SQLiteSynchronous  string `env:"SAASKIT_SQLITE_SYNCHRONOUS" default:"NORMAL" help:"SQLite synchronous pragma: NORMAL (a commit survives a crash of the process, not always power loss), FULL (a commit survives power loss too; an fsync per commit), EXTRA (as FULL in WAL mode), OFF (tests only: power loss may corrupt the file)"`
	DBMaxConns         int    `env:"SAASKIT_DB_MAX_CONNS" default:"0" help:"connection pool size; 0: 4 per CPU on Postgres, 2 per CPU (at least 4) on SQLite"`

	AdminEmail    string `env:"SAASKIT_ADMIN_EMAIL" default:"" help:"email of the superuser created on first start"`
	AdminPassword string `env:"SAASKIT_ADMIN_PASSWORD" default:"" secret:"true" help:"password of that superuser; empty: a generated one is printed once"`

	JWTIssuer         string        `env:"SAASKIT_JWT_ISSUER" default:"saaskit" help:"iss claim of access tokens"`
	JWTAudience       string        `env:"SAASKIT_JWT_AUDIENCE" default:"saaskit-api" help:"aud claim of access tokens"`
	JWTAlgorithm      string        `env:"SAASKIT_JWT_ALGORITHM" default:"EdDSA" help:"signing algorithm of new keys: EdDSA, ES256 or RS256"`
	AccessTokenTTL    time.Duration `env:"SAASKIT_ACCESS_TOKEN_TTL" default:"15m" help:"lifetime of access tokens"`
	RefreshTokenTTL   time.Duration `env:"SAASKIT_REFRESH_TOKEN_TTL" default:"720h" help:"lifetime of refresh tokens"`
	RefreshReuseGrace time.Duration `env:"SAASKIT_REFRESH_REUSE_GRACE" default:"10s" help:"how long a rotated refresh token may be reused (a retried request) before reuse revokes its family"`
	KeyRotateInterval time.Duration `env:"SAASKIT_JWT_ROTATE_INTERVAL" default:"720h" help:"how often the signing key rotates; 0 disables automatic rotation"`
	PasswordMinLength int           `env:"SAASKIT_PASSWORD_MIN_LENGTH" default:"10" help:"minimum password length"`
	HashConcurrency   int           `env:"SAASKIT_HASH_CONCURRENCY" default:"0" help:"password hashes computed at once; 0: one per CPU (bounds memory under a login flood)"`

	RedisURL       string        `env:"SAASKIT_REDIS_URL" default:"" help:"redis://host:port/db for shared rate limits; empty: in-memory limits"`
	RedisPrefix    string        `env:"SAASKIT_REDIS_PREFIX" default:"saaskit:ratelimit:" help:"prefix of the rate-limit keys in Redis, so that deployments can share one Redis"`
	CORSOrigins    string        `env:"SAASKIT_CORS_ORIGINS" default:"" help:"comma-separated origins allowed by CORS; empty: CORS off"`
	TrustedProxies string        `env:"SAASKIT_TRUSTED_PROXIES" default:"" help:"comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted"`
	MaxBodyBytes   int64         `env:"SAASKIT_MAX_BODY_BYTES" default:"1048576" help:"largest request body accepted by the API"`
	LogFormat      string        `env:"SAASKIT_LOG_FORMAT" default:"json" help:"log format: json or text"`
	LogLevel       string        `env:"SAASKIT_LOG_LEVEL" default:"info" help:"log level: debug, info, warn or error"`
	ShutdownGrace  time.Duration `env:"SAASKIT_SHUTDOWN_GRACE" default:"15s" help:"how long shutdown waits for requests in flight"`

	// Rate limits use the syntax N/duration[,burst]: "600/1m" is 600
	// requests a minute with bursts of 600, "10/1m,5" the same rate with
	// bursts of 5, and "0" no limit. With Redis the limits are shared by
	// every replica; when Redis is unreachable the api and anon scopes fail
	// open (the error is logged and counted in saaskit_ratelimit_errors_total)
	// and the auth scope fails closed (503), so that an outage cannot open
	// the door to password guessing.
	RateLimitAPI   string `env:"SAASKIT_RATE_LIMIT_API" default:"600/1m" help:"authenticated requests per user per tenant, as N/duration[,burst]; 0: unlimited; fails open when Redis is unreachable"`
	RateLimitPlans string `env:"SAASKIT_RATE_LIMIT_PLANS" default:"" help:"per-plan quotas replacing SAASKIT_RATE_LIMIT_API for tenants on those plans, as plan=N/duration[,burst],...; e.g. free=600/1m,pro=6000/1m,enterprise=0 (0: unlimited)"`
	RateLimitAuth  string `env:"SAASKIT_RATE_LIMIT_AUTH" default:"10/1m" help:"register, login and token attempts per client IP and, separately, per email; 0: unlimited; fails closed (503) when Redis is unreachable"`
	RateLimitAnon  string `env:"SAASKIT_RATE_LIMIT_ANON" default:"120/1m" help:"other unauthenticated API requests per client IP (refresh, logout, bad tokens); 0: unlimited; fails open when Redis is unreachable"`

	AuditSigningKey         string        `env:"SAASKIT_AUDIT_SIGNING_KEY" default:"" secret:"true" help:"signer key of audit checkpoints (saaskit audit keygen); empty: one is generated on first start and kept in the database, which lets whoever can write the database forge checkpoints, so set your own in production"`
	AuditOrigin             string        `env:"SAASKIT_AUDIT_ORIGIN" default:"saaskit/audit" help:"origin line prefix of signed audit checkpoints; name the deployment"`
	AuditCheckpointInterval time.Duration `env:"SAASKIT_AUDIT_CHECKPOINT_INTERVAL" default:"1h" help:"how often every tenant with new audit events gets a signed checkpoint; 0 disables the schedule"`

	// Single sign-on. Client secrets and SP private keys are sealed with
	// the first key; every listed key opens them, so a key rotates by
	// putting the new one first and saving each tenant's connection again.
	SSOEncryptionKey string `env:"SAASKIT_SSO_ENCRYPTION_KEY" default:"" secret:"true" help:"comma-separated base64 32-byte AES-GCM keys sealing SSO secrets, the first one sealing (rotate by prepending a new key); empty: SSO off"`
	SSOPublicURL     string `env:"SAASKIT_SSO_PUBLIC_URL" default:"" help:"public base URL of the server in SSO redirect, metadata and ACS URLs, e.g. https://api.example.com; empty: taken from each request"`

	// Webhook processing. Events are stored with their job in one
	// transaction; workers (in serve, or in saaskit worker) process them.
	Workers            string        `env:"SAASKIT_WORKERS" default:"on" help:"on: serve also processes webhook events; off: serve only receives them and saaskit worker processes them"`
	WorkerConcurrency  int           `env:"SAASKIT_WORKER_CONCURRENCY" default:"100" help:"webhook events processed at once by one process"`
	WorkerPollInterval time.Duration `env:"SAASKIT_WORKER_POLL_INTERVAL" default:"100ms" help:"how often idle workers look for new jobs"`
	WebhookMaxAttempts int           `env:"SAASKIT_WEBHOOK_MAX_ATTEMPTS" default:"10" help:"attempts to process a webhook event before it is failed (the dead letter; replay it through the API)"`
	WebhookRetryBase   time.Duration `env:"SAASKIT_WEBHOOK_RETRY_BASE" default:"1s" help:"wait after the first failed attempt; it doubles at each attempt, with 50% jitter"`
	WebhookRetryMax    time.Duration `env:"SAASKIT_WEBHOOK_RETRY_MAX" default:"1h" help:"longest wait between two attempts"`
	WebhookJobTimeout  time.Duration `env:"SAASKIT_WEBHOOK_JOB_TIMEOUT" default:"30s" help:"longest a processing attempt may run; an attempt left running by a process that died is retried after twice this (checked every 30s)"`
	WebhookRetention   time.Duration `env:"SAASKIT_WEBHOOK_RETENTION" default:"720h" help:"processed and skipped webhook events older than this are deleted by the workers (failed ones are kept); negative: kept forever"`
	PaymentGrace       time.Duration `env:"SAASKIT_PAYMENT_GRACE" default:"336h" help:"how long a tenant's payments may fail before payment-service events suspend it"`

	// Outbound calls to the providers' APIs: health checks and
	// reconciliation (saaskit mock-services prints the URLs of its mocks).
	IntegrationURLs          string        `env:"SAASKIT_INTEGRATION_URLS" default:"" help:"base URLs of the providers' APIs as provider=url,...; e.g. user-service=http://127.0.0.1:9101,payment-service=http://127.0.0.1:9102; a provider without one gets no health checks or reconciliation"`
	IntegrationCheckInterval time.Duration `env:"SAASKIT_INTEGRATION_CHECK_INTERVAL" default:"1m" help:"how often the job workers (serve, or saaskit worker) check the health of each provider with a URL, scheduled once by the River leader; 0 disables the checks"`
	ReconcileInterval        time.Duration `env:"SAASKIT_RECONCILE_INTERVAL" default:"1h" help:"how often the job workers reconcile every connection with its provider (repairing missed webhooks), one job per connection at a time; 0 disables the schedule"`
}

// Defaults fills every zero field of c with its default.
func (c *Config) Defaults() {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		if !f.IsZero() {
			continue
		}
		if def := t.Field(i).Tag.Get("default"); def != "" {
			setField(f, def) //nolint:errcheck // defaults are valid
		}
	}
}

// ConfigVar describes one configuration variable.
type ConfigVar struct {
	Env, Flag, Default, Help string
	Secret                   bool
}

// ConfigVars lists every configuration variable in field order.
func ConfigVars() []ConfigVar {
	t := reflect.TypeFor[Config]()
	out := make([]ConfigVar, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		env := f.Tag.Get("env")
		out = append(out, ConfigVar{
			Env:     env,
			Flag:    flagName(env),
			Default: f.Tag.Get("default"),
			Help:    f.Tag.Get("help"),
			Secret:  f.Tag.Get("secret") == "true",
		})
	}
	return out
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "SAASKIT_")), "_", "-")
}

// LoadConfig reads the configuration from the environment (getenv, usually
// os.Getenv) and then from args, parsed as flags on fs.
func LoadConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		val := getenv(f.Tag.Get("env"))
		if val == "" {
			val = f.Tag.Get("default")
		}
		if val != "" {
			if err := setField(v.Field(i), val); err != nil {
				return c, fmt.Errorf("%w: %s=%q: %v", ErrConfig, f.Tag.Get("env"), val, err)
			}
		}
		field := v.Field(i)
		env := f.Tag.Get("env")
		fs.Func(flagName(env), f.Tag.Get("help")+" (env "+env+")", func(s string) error {
			return setField(field, s)
		})
	}
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, c.Validate()
}

// Validate checks values that parse but make no sense.
func (c *Config) Validate() error {
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("%w: SAASKIT_LOG_FORMAT must be json or text, not %q", ErrConfig, c.LogFormat)
	}
	switch c.JWTAlgorithm {
	case "EdDSA", "ES256", "RS256":
	default:
		return fmt.Errorf("%w: SAASKIT_JWT_ALGORITHM must be EdDSA, ES256 or RS256, not %q", ErrConfig, c.JWTAlgorithm)
	}
	if c.AccessTokenTTL <= 0 || c.RefreshTokenTTL <= 0 {
		return fmt.Errorf("%w: token lifetimes must be positive", ErrConfig)
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("%w: SAASKIT_MAX_BODY_BYTES must be positive", ErrConfig)
	}
	if _, err := c.rateLimits(); err != nil {
		return err
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		return err
	}
	if c.AuditSigningKey != "" {
		if _, err := note.NewSigner(c.AuditSigningKey); err != nil {
			return fmt.Errorf("%w: SAASKIT_AUDIT_SIGNING_KEY is not a note signer key (see saaskit audit keygen)", ErrConfig)
		}
	}
	if c.AuditCheckpointInterval < 0 {
		return fmt.Errorf("%w: SAASKIT_AUDIT_CHECKPOINT_INTERVAL must not be negative", ErrConfig)
	}
	if _, err := c.integrationURLs(); err != nil {
		return err
	}
	if err := c.validateWorkers(); err != nil {
		return err
	}
	return nil
}

func setField(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(s)
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// EnvExample renders the .env.example file from [ConfigVars].
func EnvExample() string {
	var b strings.Builder
	b.WriteString("# saaskit configuration. Every variable is optional; the value shown is the default.\n")
	b.WriteString("# Generated from server.Config; a test keeps this file in step with it.\n")
	for _, v := range ConfigVars() {
		fmt.Fprintf(&b, "\n# %s (flag -%s)\n%s=%s\n", v.Help, v.Flag, v.Env, v.Default)
	}
	b.WriteString(tracingEnvExample)
	return b.String()
}

// tracingEnvExample documents the OpenTelemetry variables, which the
// server reads as the OpenTelemetry specification defines them (they have
// no flags). They are commented out: tracing is off by default.
const tracingEnvExample = `
# Tracing (OpenTelemetry) is off by default and costs nothing then. The standard
# OTEL_ variables turn it on: spans of API requests, SQL queries, jobs and calls
# to the providers are exported over OTLP/HTTP, and log lines get trace_id and
# span_id. OTEL_SDK_DISABLED=true turns it off whatever else is set;
# OTEL_TRACES_EXPORTER=none too. Other OTEL_EXPORTER_OTLP_* variables (headers,
# timeout, TLS) and OTEL_RESOURCE_ATTRIBUTES work as the specification says.
# OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
# OTEL_TRACES_EXPORTER=otlp
# OTEL_SERVICE_NAME=saaskit
# OTEL_TRACES_SAMPLER=parentbased_traceidratio
# OTEL_TRACES_SAMPLER_ARG=0.1
`

func getenvOS(k string) string { return os.Getenv(k) }
