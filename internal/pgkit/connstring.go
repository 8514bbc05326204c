package pgkit

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// A connection string is read by pgx's parser (pgconn.ParseConfig): it
// says what the password is. Two things it does not give back are done
// here: the password as the user wrote it (percent-encoded, quoted), for
// redaction, and the string without its password, for the libpq tools,
// which read every other parameter themselves. Both follow the grammar
// pgconn and libpq share, and a test holds them to pgconn's reading.

// isURL says which of the two forms a connection string has, as pgconn
// decides it.
func isURL(conn string) bool {
	return strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://")
}

// ConnSecrets lists the secrets in a connection string: its password (and
// sslpassword) as pgx reads them, and as written in the string. A string
// pgx cannot parse still gives what the grammar finds, so that a
// malformed string never shows its password.
func ConnSecrets(conn string) []string {
	var out []string
	if cfg, err := pgconn.ParseConfig(conn); err == nil {
		out = append(out, cfg.Password)
	}
	if isURL(conn) {
		if raw := rawURLPassword(conn); raw != "" {
			out = append(out, raw)
			if pw, err := url.PathUnescape(raw); err == nil {
				out = append(out, pw)
			}
		}
		if u, err := url.Parse(conn); err == nil {
			for _, part := range strings.Split(u.RawQuery, "&") {
				k, v, _ := strings.Cut(part, "=")
				if k, err := url.QueryUnescape(k); err == nil && (k == "password" || k == "sslpassword") {
					out = append(out, v)
					if pw, err := url.QueryUnescape(v); err == nil {
						out = append(out, pw)
					}
				}
			}
		}
	} else if pairs, err := keywordValues(conn); err == nil {
		for _, p := range pairs {
			if p.key == "password" || p.key == "sslpassword" {
				out = append(out, p.value, p.raw)
			}
		}
	}
	var kept []string
	for _, s := range out {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// rawURLPassword is the password in a URL's user info as written: the
// authority ends at the first '/', '?' or '#', the user info at its last
// '@', the user name at the first ':' (as net/url splits them).
func rawURLPassword(conn string) string {
	rest := conn[strings.Index(conn, "://")+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

// withoutPassword is conn as the user wrote it, but for its password
// (user info and password parameter): sslrootcert, options,
// target_session_attrs, several hosts, an IPv6 host all reach libpq as
// given.
func withoutPassword(conn string) (string, error) {
	if isURL(conn) {
		u, err := url.Parse(conn)
		if err != nil {
			return "", err
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		var keep []string
		for _, part := range strings.Split(u.RawQuery, "&") {
			k, _, _ := strings.Cut(part, "=")
			if k, err := url.QueryUnescape(k); part == "" || err == nil && k == "password" {
				continue
			}
			keep = append(keep, part)
		}
		u.RawQuery = strings.Join(keep, "&")
		return u.String(), nil
	}
	pairs, err := keywordValues(conn)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range pairs {
		if p.key == "password" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p.value) + "'")
	}
	return b.String(), nil
}

// keywordPair is one key = value of a key=value connection string: the
// value unescaped, and raw as written (inside its quotes).
type keywordPair struct {
	key, value, raw string
}

// keywordValues splits a key=value connection string as libpq does:
// whitespace around '=' and between pairs; a value bare up to whitespace
// or single-quoted; a backslash escapes the next character in either.
func keywordValues(s string) ([]keywordPair, error) {
	const space = " \t\n\r\v\f"
	var out []keywordPair
	s = strings.TrimLeft(s, space)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New("invalid keyword/value")
		}
		key := strings.Trim(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return nil, errors.New("invalid keyword/value")
		}
		s = strings.TrimLeft(s[eq+1:], space)
		quoted := len(s) > 0 && s[0] == '\''
		if quoted {
			s = s[1:]
		}
		end := 0
		for ; end < len(s); end++ {
			if quoted && s[end] == '\'' || !quoted && strings.IndexByte(space, s[end]) >= 0 {
				break
			}
			if s[end] == '\\' {
				end++
			}
		}
		if end > len(s) {
			end = len(s)
		}
		if quoted && end >= len(s) {
			return nil, errors.New("unterminated quoted string in connection info string")
		}
		raw := s[:end]
		out = append(out, keywordPair{key: key, value: unescapeKeyword(raw), raw: raw})
		if quoted {
			end++
		}
		s = strings.TrimLeft(s[end:], space)
	}
	return out, nil
}

func unescapeKeyword(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CheckSyntax checks a connection string's grammar only: one meant for
// another machine (replicate's source_conninfo, read by the target server)
// may name files that are not here. Its error never quotes the string.
func CheckSyntax(conn string) error {
	if isURL(conn) {
		if _, err := url.Parse(conn); err != nil {
			return errors.New("cannot parse the connection URL")
		}
		return nil
	}
	if _, err := keywordValues(conn); err != nil {
		return fmt.Errorf("cannot parse the connection string: %w", err)
	}
	return nil
}

// Where names where a connection string leads, user@host:port/dbname,
// without its password: as pgx reads it, or as written when pgx cannot
// read it here (a certificate file on another machine).
func Where(conn string) string {
	if cfg, err := pgconn.ParseConfig(conn); err == nil {
		return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	}
	kv := map[string]string{}
	if isURL(conn) {
		u, err := url.Parse(conn)
		if err != nil {
			return "(an unreadable connection string)"
		}
		kv["host"], kv["port"], kv["dbname"] = u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/")
		if u.User != nil {
			kv["user"] = u.User.Username()
		}
	} else {
		pairs, err := keywordValues(conn)
		if err != nil {
			return "(an unreadable connection string)"
		}
		for _, p := range pairs {
			kv[p.key] = p.value
		}
	}
	if kv["port"] == "" {
		kv["port"] = "5432"
	}
	return fmt.Sprintf("%s@%s:%s/%s", kv["user"], kv["host"], kv["port"], kv["dbname"])
}
