package projections

import (
	"strconv"
	"strings"
	"sync"
)

// rewriter turns a projection's portable SQL into the statement a dialect
// runs: {name} tokens become prefix+name, and for PostgreSQL ? placeholders
// become $1, $2, …. Statements repeat at every event, so results are cached.
type rewriter struct {
	dialect Dialect
	cache   sync.Map // rewriteKey → string
}

type rewriteKey struct {
	prefix, query string
}

// rewrite returns query with {name} tokens replaced by prefix+name and, for
// PostgreSQL, ? placeholders numbered. Quoted strings, quoted identifiers
// and comments are left alone, so a literal '?' or '{x}' stays what it is.
func (r *rewriter) rewrite(prefix, query string) string {
	k := rewriteKey{prefix, query}
	if v, ok := r.cache.Load(k); ok {
		return v.(string)
	}
	out := rewriteSQL(r.dialect, prefix, query)
	r.cache.Store(k, out)
	return out
}

func rewriteSQL(d Dialect, prefix, q string) string {
	var b strings.Builder
	b.Grow(len(q) + 32)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end := closingQuote(q, i)
			b.WriteString(q[i:end])
			i = end - 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i
			}
			b.WriteString(q[i : i+end])
			i += end - 1
		case c == '?' && d == Postgres:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		case c == '{':
			end := tokenEnd(q, i)
			if end < 0 {
				b.WriteByte(c)
				continue
			}
			b.WriteString(prefix)
			b.WriteString(q[i+1 : end])
			i = end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// closingQuote returns the index just past the quoted section that starts
// at q[i]; a doubled quote inside is an escaped quote.
func closingQuote(q string, i int) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		if q[j] != quote {
			continue
		}
		if j+1 < len(q) && q[j+1] == quote {
			j++
			continue
		}
		return j + 1
	}
	return len(q)
}

// tokenEnd returns the index of the '}' closing a {name} token that starts
// at q[i], or -1 when q[i:] does not start one.
func tokenEnd(q string, i int) int {
	for j := i + 1; j < len(q); j++ {
		c := q[j]
		switch {
		case c == '}':
			if j == i+1 {
				return -1
			}
			return j
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
		default:
			return -1
		}
	}
	return -1
}
