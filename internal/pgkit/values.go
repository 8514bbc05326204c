package pgkit

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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// This file turns values as PostgreSQL sends them into plain JSON-friendly
// Go values (nil, bool, int64, float64, string, []any, map[string]any), so
// that outputs read the same whether a step ran now or was read back from
// the journal, and so that assertions compare numbers with numbers.
//
// Types with a natural JSON form (pgNative) are decoded by pgx, in binary
// where it can. Every other type (interval, time, money, ranges, enums,
// geometric and user-defined types) is asked for in the text format and
// kept as the server's own text, which pgx's re-encoding would not always
// reproduce ("12:34:56" would read "12:34:56.000000").

// pgNative lists the types converted to JSON values; json and jsonb are
// decoded here, the others by pgx.
var pgNative = map[uint32]bool{
	pgtype.BoolOID: true, pgtype.Int2OID: true, pgtype.Int4OID: true, pgtype.Int8OID: true,
	pgtype.OIDOID: true, pgtype.Float4OID: true, pgtype.Float8OID: true, pgtype.NumericOID: true,
	pgtype.TextOID: true, pgtype.VarcharOID: true, pgtype.BPCharOID: true, pgtype.NameOID: true,
	pgtype.UUIDOID: true, pgtype.InetOID: true, pgtype.CIDROID: true, pgtype.ByteaOID: true,
	pgtype.DateOID: true, pgtype.TimestampOID: true, pgtype.TimestamptzOID: true,
	pgtype.JSONOID: true, pgtype.JSONBOID: true,
}

// ResultFormats asks for native types and their arrays in the format pgx
// prefers and for everything else in text (an OID missing from the map
// means text).
func ResultFormats(m *pgtype.Map) pgx.QueryResultFormatsByOID {
	formats := pgx.QueryResultFormatsByOID{}
	for oid := range pgNative {
		formats[oid] = m.FormatCodeForOID(oid)
		if elem, ok := pgArrayOf(m, oid); ok && oid != pgtype.JSONOID && oid != pgtype.JSONBOID {
			formats[elem] = m.FormatCodeForOID(elem)
		}
	}
	return formats
}

// pgArrayOf returns the array type whose elements are oid.
func pgArrayOf(m *pgtype.Map, oid uint32) (uint32, bool) {
	t, ok := m.TypeForOID(oid)
	if !ok {
		return 0, false
	}
	at, ok := m.TypeForName("_" + t.Name)
	if !ok {
		return 0, false
	}
	return at.OID, true
}

// Value decodes one column value. raw is nil for NULL; format is the wire
// format PostgreSQL used (text in the simple protocol, as pgResultFormats
// asked in the extended one): the result does not depend on it.
func Value(m *pgtype.Map, oid uint32, format int16, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	if oid == pgtype.JSONOID || oid == pgtype.JSONBOID {
		if oid == pgtype.JSONBOID && format == pgtype.BinaryFormatCode {
			if len(raw) == 0 || raw[0] != 1 {
				return nil, fmt.Errorf("jsonb: unknown binary version")
			}
			raw = raw[1:]
		}
		return pgJSON(raw)
	}
	t, ok := m.TypeForOID(oid)
	switch {
	case !ok && format == pgtype.TextFormatCode:
		return string(raw), nil // enums, user-defined types
	case !ok:
		return `\x` + hex.EncodeToString(raw), nil
	}
	if ac, isArray := t.Codec.(*pgtype.ArrayCodec); isArray {
		return pgArray(m, oid, ac.ElementType.OID, format, raw)
	}
	if !pgNative[oid] && format == pgtype.TextFormatCode {
		return string(raw), nil
	}
	v, err := t.Codec.DecodeValue(m, oid, format, raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s value: %w", t.Name, err)
	}
	return pgPlain(m, oid, v), nil
}

// pgArray decodes an array into a list (nested lists for several
// dimensions); elements of types without a JSON form keep their text.
func pgArray(m *pgtype.Map, oid, elem uint32, format int16, raw []byte) (any, error) {
	isJSON := elem == pgtype.JSONOID || elem == pgtype.JSONBOID
	var values []any
	var dims []pgtype.ArrayDimension
	if format == pgtype.TextFormatCode && (!pgNative[elem] || isJSON) {
		var arr pgtype.Array[*string]
		if err := m.Scan(oid, format, raw, &arr); err != nil {
			return nil, fmt.Errorf("decode array: %w", err)
		}
		values, dims = make([]any, len(arr.Elements)), arr.Dims
		for i, e := range arr.Elements {
			switch {
			case e == nil:
			case isJSON:
				v, err := pgJSON([]byte(*e))
				if err != nil {
					return nil, err
				}
				values[i] = v
			default:
				values[i] = *e
			}
		}
	} else {
		var arr pgtype.Array[any]
		if err := m.Scan(oid, format, raw, &arr); err != nil {
			return nil, fmt.Errorf("decode array: %w", err)
		}
		values, dims = make([]any, len(arr.Elements)), arr.Dims
		for i, e := range arr.Elements {
			values[i] = pgPlain(m, elem, e)
		}
	}
	return pgNest(values, dims), nil
}

// pgNest shapes an array's elements, stored flat, into nested lists.
func pgNest(flat []any, dims []pgtype.ArrayDimension) []any {
	if len(dims) <= 1 {
		return flat
	}
	size := len(flat) / max(1, int(dims[0].Length))
	out := make([]any, 0, dims[0].Length)
	for i := 0; i+size <= len(flat) && size > 0; i += size {
		out = append(out, pgNest(flat[i:i+size], dims[1:]))
	}
	return out
}

// pgPlain converts a value pgx decoded for a native type.
func pgPlain(m *pgtype.Map, oid uint32, v any) any {
	switch x := v.(type) {
	case nil, bool, string:
		return x
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint32: // oid
		return int64(x)
	case float32:
		// Through its shortest text so that real 0.1 reads 0.1, not 0.100000001.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return pgFloat(f)
	case float64:
		return pgFloat(x)
	case pgtype.Numeric:
		if text, err := x.Value(); err == nil {
			if s, ok := text.(string); ok {
				return exactNumber(s)
			}
		}
	case time.Time:
		if s, ok := pgISOTime(oid, x); ok {
			return s
		}
	case pgtype.InfinityModifier: // infinite dates and timestamps
		return x.String()
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
	}
	// Not reached for native types; kept so that nothing is ever lost.
	if buf, err := m.Encode(oid, pgtype.TextFormatCode, v, nil); err == nil && buf != nil {
		return string(buf)
	}
	return fmt.Sprint(v)
}

// pgFloat keeps finite floats; JSON has no NaN or infinities, so those
// become PostgreSQL's spelling of them.
func pgFloat(f float64) any {
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

// exactNumber turns an exact decimal (numeric, a JSON number) into an int64
// when it is a whole number that fits, a float64 when the float prints back
// as the same number, and otherwise keeps the digits as a string, so that
// no precision is lost silently.
func exactNumber(s string) any {
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

// pgJSON decodes a JSON document; numbers go through exactNumber rather
// than all becoming float64s.
func pgJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode json value: %w", err)
	}
	return pgJSONNumbers(v), nil
}

func pgJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return exactNumber(string(x))
	case []any:
		for i := range x {
			x[i] = pgJSONNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = pgJSONNumbers(x[k])
		}
	}
	return v
}

// pgISOTime formats dates and timestamps as ISO 8601. Years outside 1-9999
// (BC dates) have no ISO form Go prints; they keep pgx's text form.
func pgISOTime(oid uint32, t time.Time) (string, bool) {
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
