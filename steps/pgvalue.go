package steps

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// This file turns values as PostgreSQL sends them into plain JSON-friendly
// Go values (nil, bool, int64, float64, string, []any, map[string]any), so
// that outputs read the same whether a step ran now or was read back from
// the journal, and so that assertions compare numbers with numbers.

// pgValue decodes one column value. raw is nil for NULL; format is the wire
// format PostgreSQL used (text in the simple protocol, mostly binary in the
// extended one): the result does not depend on it.
func pgValue(m *pgtype.Map, oid uint32, format int16, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	switch oid {
	case pgtype.JSONOID, pgtype.JSONBOID:
		// Decoded here rather than by pgx so that numbers keep their digits
		// (pgx would turn every JSON number into a float64).
		if oid == pgtype.JSONBOID && format == pgtype.BinaryFormatCode {
			if len(raw) == 0 || raw[0] != 1 {
				return nil, fmt.Errorf("jsonb: unknown binary version")
			}
			raw = raw[1:]
		}
		return decodeJSON(raw)
	}
	t, ok := m.TypeForOID(oid)
	if !ok {
		// pgx asks for the text format for types it does not know (enums,
		// user-defined types): that text is the value.
		if format == pgtype.TextFormatCode {
			return string(raw), nil
		}
		return `\x` + hex.EncodeToString(raw), nil
	}
	v, err := t.Codec.DecodeValue(m, oid, format, raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s value: %w", t.Name, err)
	}
	return plainValue(m, oid, v), nil
}

// plainValue converts a value pgx decoded for a column of type oid.
func plainValue(m *pgtype.Map, oid uint32, v any) any {
	switch x := v.(type) {
	case nil, bool, string:
		return x
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint32: // oid, xid, cid
		return int64(x)
	case float32:
		// Through its shortest text so that real 0.1 reads 0.1, not 0.100000001.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return plainFloat(f)
	case float64:
		return plainFloat(x)
	case pgtype.Numeric:
		text, err := x.Value()
		if s, ok := text.(string); err == nil && ok {
			return decimal(s)
		}
	case time.Time:
		if s, ok := isoTime(oid, x); ok {
			return s
		}
	case [16]byte: // uuid
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
	case netip.Prefix:
		// inet prints a single host without its /32 (or /128); cidr always has one.
		if oid == pgtype.InetOID && x.Bits() == x.Addr().BitLen() {
			return x.Addr().String()
		}
		return x.String()
	case []byte: // bytea, as PostgreSQL prints it with bytea_output = hex
		return `\x` + hex.EncodeToString(x)
	case []any: // an array: its elements have the array's element type
		elem := uint32(0)
		if t, ok := m.TypeForOID(oid); ok {
			if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok {
				elem = ac.ElementType.OID
			}
		}
		out := make([]any, len(x))
		for i, e := range x {
			if oid == pgtype.JSONArrayOID || oid == pgtype.JSONBArrayOID {
				out[i] = e // pgx decoded the JSON already
				continue
			}
			out[i] = plainValue(m, elem, e)
		}
		return out
	case map[string]*string: // hstore
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e == nil {
				out[k] = nil
			} else {
				out[k] = *e
			}
		}
		return out
	case pgtype.InfinityModifier: // infinite dates and timestamps
		return x.String()
	}
	// Anything else (interval, time, money, geometric and range types, …)
	// becomes its text form, encoded by the same codec.
	if buf, err := m.Encode(oid, pgtype.TextFormatCode, v, nil); err == nil && buf != nil {
		return string(buf)
	}
	return fmt.Sprint(v)
}

// plainFloat keeps finite floats; JSON has no NaN or infinities, so those
// become PostgreSQL's spelling of them.
func plainFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// decimal turns an exact decimal (numeric, a JSON number) into an int64 when
// it is a whole number that fits, a float64 when the float prints back as
// the same number, and otherwise keeps the digits as a string, so that no
// precision is lost silently.
func decimal(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	exact, ok := new(big.Rat).SetString(s)
	if !ok {
		return s // NaN, Infinity
	}
	if exact.IsInt() && exact.Num().IsInt64() {
		return exact.Num().Int64() // 1.00
	}
	f, _ := exact.Float64()
	if math.IsInf(f, 0) {
		return s
	}
	back, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if ok && back.Cmp(exact) == 0 {
		return f
	}
	return s
}

// decodeJSON decodes a JSON document, numbers included, with decimal.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode json value: %w", err)
	}
	return jsonNumbers(v), nil
}

func jsonNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return decimal(string(x))
	case []any:
		for i := range x {
			x[i] = jsonNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = jsonNumbers(x[k])
		}
	}
	return v
}

// isoTime formats dates and timestamps as ISO 8601. Years outside 1-9999
// (BC dates) have no ISO form Go can print; they keep PostgreSQL's text.
func isoTime(oid uint32, t time.Time) (string, bool) {
	if t.Year() < 1 || t.Year() > 9999 {
		return "", false
	}
	switch oid {
	case pgtype.DateOID:
		return t.Format(time.DateOnly), true
	case pgtype.TimestampOID:
		return t.Format("2006-01-02T15:04:05.999999"), true
	case pgtype.TimestamptzOID:
		return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00"), true
	}
	return "", false
}
