package compare

import (
	"fmt"
	"strings"

	"github.com/planrun/planrun/internal/pgkit"
)

// cmpNativeHash is how built-in types are hashed without printing them
// (printing a timestamptz costs three times hashing it), each so that
// two values hash alike exactly when their texts are the same. A column
// is hashed natively only when its types on both sides share a class:
// int2, int4 and int8 hash equal values alike, so an int → bigint
// migration still compares equal. Every other type hashes its text, which
// the pinned session settings make the same on both sides: numeric (its
// hash ignores the sign and trailing zeros: -5 = 5, 1.0 = 1.00), jsonb
// (its hash ignores where arrays end: [[1],2] = [[1,2]]), interval ('1
// day' = '24 hours'), enums (hashed by OID, which differs between
// databases), arrays, composites, extension types. The SQL takes the
// column as %[1]s and the column's seed as %[2]d.
//
// PostgreSQL folds a 64-bit value to 32 bits before hashing it, so -1 and
// 4294967295 would hash alike as int8 (an unsigned-conversion bug a copy
// could make): int8 values also mix in their high half. Timestamps keep
// the fold: a change to one timestamp alone goes unnoticed with a chance
// of about one in 2^32.
var cmpNativeHash = map[uint32]struct{ class, sql string }{
	20:   {"int", "hashint8extended(%[1]s::int8, %[2]d) # (%[1]s::int8 >> 32)"},
	21:   {"int", "hashint4extended(%[1]s, %[2]d)"},
	23:   {"int", "hashint4extended(%[1]s, %[2]d)"},
	26:   {"oid", "hashoidextended(%[1]s, %[2]d)"},
	16:   {"bool", "hashint4extended(%[1]s::int4, %[2]d)"},
	2950: {"uuid", "uuid_hash_extended(%[1]s, %[2]d)"},
	1114: {"timestamp", "timestamp_hash_extended(%[1]s, %[2]d)"},
	// AT TIME ZONE INTERVAL '0' relabels the instant as a timestamp by
	// arithmetic; ::timestamp would convert through the time zone, which
	// costs more than the hash.
	1184: {"timestamptz", "timestamp_hash_extended(%[1]s AT TIME ZONE INTERVAL '0', %[2]d)"},
	1083: {"time", "time_hash_extended(%[1]s, %[2]d)"},
	// Days since 2000 for finite dates (date has no hash function of its own to call).
	1082: {"date", `CASE WHEN isfinite(%[1]s) THEN hashint4extended(%[1]s - DATE '2000-01-01', %[2]d) ELSE hashtextextended(%[1]s::text, %[2]d) END`},
	// The hash equates -0 and 0, which print apart.
	700: {"float4", `CASE WHEN %[1]s = 0 THEN hashtextextended(%[1]s::text, %[2]d) ELSE hashfloat4extended(%[1]s, %[2]d) END`},
	701: {"float8", `CASE WHEN %[1]s = 0 THEN hashtextextended(%[1]s::text, %[2]d) ELSE hashfloat8extended(%[1]s, %[2]d) END`},
	// COLLATE "C": bytes, even under a nondeterministic collation whose hash folds case.
	25:   {"text", `hashtextextended(%[1]s COLLATE "C", %[2]d)`},
	1043: {"text", `hashtextextended(%[1]s COLLATE "C", %[2]d)`},
	1042: {"text", `hashbpcharextended(%[1]s COLLATE "C", %[2]d)`}, // trailing blanks dropped, as bpchar::text does
}

// cmpWideInt is the int class's SQL when either side's column is int8:
// the narrower side's values then hash as the wider side's do.
const cmpWideInt = 20

const cmpTextHash = `hashtextextended(%[1]s::text COLLATE "C", %[2]d)`

// cmpRowHash is the SQL of a row's 64-bit hash on one side: the hashes of
// the columns XORed, each hashed with its own seed (its place in the
// list) so that values moved between columns change it, and each NULL
// standing for its own constant.
func cmpRowHash(names []string, mine, theirs map[string]cmpColumn) string {
	if len(names) == 0 {
		return "0::int8"
	}
	parts := make([]string, len(names))
	for i, name := range names {
		c := mine[name]
		parts[i] = cmpColumnHash(c, theirs[name], i+1)
	}
	return strings.Join(parts, " # ")
}

// cmpColumnHash is the SQL of one column's 64-bit hash on the side whose
// column is mine, seeded with the column's place in the list.
func cmpColumnHash(mine, theirs cmpColumn, seed int) string {
	format := cmpTextHash
	if n, ok := cmpNativeHash[mine.typid]; ok && n.class == cmpNativeHash[theirs.typid].class {
		format = n.sql
		if n.class == "int" && (mine.typid == cmpWideInt || theirs.typid == cmpWideInt) {
			format = cmpNativeHash[cmpWideInt].sql
		}
	}
	h := fmt.Sprintf(format, pgkit.QuoteIdent(mine.name), seed)
	if !mine.notNull {
		// A NULL stands for a constant of its own in each column.
		h = fmt.Sprintf("coalesce(%s, %d)", h, int64(cmpMix(uint64(seed))))
	}
	return "(" + h + ")"
}

// cmpMix is splitmix64's finaliser: a NULL's stand-in for each column.
func cmpMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
