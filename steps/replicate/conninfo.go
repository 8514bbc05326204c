package replicate

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/planrun/planrun/internal/pgkit"
)

// conninfo is the connection string the target server uses to reach the
// source: source_conninfo, or one built from the source's URL. Its password
// is registered as a secret.
func (r *replication) conninfo() (string, error) {
	if r.a.SourceConninfo != "" {
		kv, err := parseConninfo(r.a.SourceConninfo)
		if err != nil {
			return "", fmt.Errorf("source_conninfo: %w", err)
		}
		if p := kv["password"]; p != "" && r.env != nil && r.env.Secrets != nil {
			r.env.Secrets(p)
		}
		return r.a.SourceConninfo, nil
	}
	cfg, err := pgkit.ConnConfig(r.env, r.a.Source, false)
	if err != nil {
		return "", err
	}
	parts := []string{
		"host=" + conninfoQuote(cfg.Host),
		fmt.Sprintf("port=%d", cfg.Port),
		"dbname=" + conninfoQuote(cfg.Database),
		"user=" + conninfoQuote(cfg.User),
	}
	if cfg.Password != "" {
		parts = append(parts, "password="+conninfoQuote(cfg.Password))
	}
	// TLS settings pass through as the user wrote them.
	given, _ := parseConninfo(r.a.Source.URL)
	for _, k := range []string{"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcompression", "connect_timeout", "target_session_attrs"} {
		if v, ok := given[k]; ok {
			parts = append(parts, k+"="+conninfoQuote(v))
		}
	}
	return strings.Join(parts, " "), nil
}

// conninfoQuote quotes a libpq keyword/value value.
func conninfoQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// parseConninfo reads a libpq connection string (a postgres:// URL or
// keyword/value pairs) into its keywords. Errors never quote the string: it
// may hold a password.
func parseConninfo(s string) (map[string]string, error) {
	kv := map[string]string{}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, errors.New("cannot parse the connection URL")
		}
		if h := u.Hostname(); h != "" {
			kv["host"] = h
		}
		if p := u.Port(); p != "" {
			kv["port"] = p
		}
		if d := strings.TrimPrefix(u.Path, "/"); d != "" {
			kv["dbname"] = d
		}
		if u.User != nil {
			kv["user"] = u.User.Username()
			if p, ok := u.User.Password(); ok {
				kv["password"] = p
			}
		}
		for k, v := range u.Query() {
			if len(v) > 0 {
				kv[k] = v[len(v)-1]
			}
		}
		return kv, nil
	}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i == len(s) {
			return kv, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skip()
		if i == len(s) || s[i] != '=' || key == "" {
			return nil, errors.New(`cannot parse the connection string: expected keyword=value pairs or a postgres:// URL`)
		}
		i++ // =
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					v.WriteByte(s[i])
					i++
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("cannot parse the connection string: the value of %s has no closing quote", key)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		kv[key] = v.String()
	}
}

// conninfoWhere names where a connection string leads, without its password.
func conninfoWhere(conninfo string) string {
	kv, err := parseConninfo(conninfo)
	if err != nil {
		return "(an unreadable connection string)"
	}
	port := kv["port"]
	if port == "" {
		port = "5432"
	}
	return fmt.Sprintf("%s@%s:%s/%s", kv["user"], kv["host"], port, kv["dbname"])
}

// redactErr keeps a secret out of an error's message. An error that does
// not quote it is returned as it is, cause and all.
func redactErr(err error, secrets ...string) error {
	msg := err.Error()
	changed := msg
	for _, s := range secrets {
		if s != "" {
			changed = strings.ReplaceAll(changed, s, "(sensitive)")
		}
	}
	if kv, perr := parseConninfo(strings.Join(secrets, " ")); perr == nil && kv["password"] != "" {
		changed = strings.ReplaceAll(changed, kv["password"], "(sensitive)")
	}
	if changed == msg {
		return err
	}
	return errors.New(changed)
}
