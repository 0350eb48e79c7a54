package report

import (
	"math"
	"slices"
)

// Small-cell suppression for the analyst view.
//
// The rule, as the analyst's documentation states it:
//
//  1. Primary: a count shows only when at least k distinct cases make it
//     up. This hides empty cells (0) too, so that which cells are empty does
//     not tell where the few cases are.
//  2. No back-out: counts that add up to another count of the report (the
//     parts of a total: the cells of a table and its total, a row and its
//     row total) form a relation. No hidden count may be computable from
//     the shown counts through the relations — by any linear combination
//     of them, which catches a table's row and column totals pinning a
//     cell together; and where a relation's total is shown or computable,
//     its hidden parts must hold at least k together (so the remainder is
//     not itself a small cell, and hidden cells are never all provably
//     zero).
//  3. Where 2 fails, the smallest shown part of a relation with the count
//     given away (or of the relation with too small a remainder) is hidden
//     as well — with no part left to hide, its total — and the check
//     starts over. Should nothing be left to hide next to it, every count
//     connected to it is hidden.
//  4. Rates show only when every count they are computed from shows;
//     median and p90 days only when at least k values go into them.
//
// Relations are per report: the same counts asked in another report (a
// different period, as-of date, or the organisation instead of one of its
// departments) can still be differenced against this one; that is a limit
// of cell suppression, mitigated by k, not removed.
//
// k = 1 disables suppression: every count shows. That is not an analyst
// view (QueryService never uses it); the golden tests use it to show the
// full figures next to the suppressed ones.

// cell is one count of a report before it is shown.
type cell struct {
	// value is the count in its unit: cases, outplacements, checkpoints or
	// reclassifications.
	value int
	// cases is how many distinct cases make it up.
	cases int
	// hidden marks a suppressed count.
	hidden bool
}

// add adds n units made up of the given number of distinct cases.
func (c *cell) add(n, cases int) {
	c.value += n
	c.cases += cases
}

// relation says that the parts add up to the whole.
type relation struct {
	whole *cell
	parts []*cell
}

// suppressor applies the rule to a report's cells.
type suppressor struct {
	k         int
	cells     []*cell
	tracked   map[*cell]bool
	relations []relation
}

// track registers cells for suppression; a cell registered before stays
// registered once.
func (s *suppressor) track(cells ...*cell) {
	if s.tracked == nil {
		s.tracked = map[*cell]bool{}
	}
	for _, c := range cells {
		if !s.tracked[c] {
			s.tracked[c] = true
			s.cells = append(s.cells, c)
		}
	}
}

// trackAll registers cells and returns them.
func (s *suppressor) trackAll(cells []*cell) []*cell {
	s.track(cells...)
	return cells
}

// relate records that parts add up to whole.
func (s *suppressor) relate(whole *cell, parts ...*cell) {
	s.relations = append(s.relations, relation{whole: whole, parts: parts})
}

// run hides the cells the rule hides.
func (s *suppressor) run() {
	if s.k <= 1 {
		return
	}
	for _, c := range s.cells {
		c.hidden = c.cases < s.k
	}
	for s.fixOne() {
	}
}

// fixOne finds one hidden count that the shown ones give away, or one
// relation whose hidden parts hold fewer than k, hides one more count next
// to it, and reports whether it did. A hidden count that the relations
// alone determine, with every count around it hidden already (a total
// with no parts is 0 whatever is shown), gives nothing away and is left.
func (s *suppressor) fixOne() bool {
	given := s.determined()
	for _, c := range s.cells {
		if c.hidden && given[c] && s.hideNextTo(c) {
			return true
		}
	}
	known := func(c *cell) bool { return !c.hidden || given[c] }
	for i, r := range s.relations {
		if !known(r.whole) {
			continue
		}
		unknown, sum := 0, 0
		for _, p := range r.parts {
			if !known(p) {
				unknown++
				sum += p.value
			}
		}
		if unknown > 0 && sum < s.k && s.hideMore(i) {
			return true
		}
	}
	return false
}

// determined returns the hidden counts the shown ones determine: those
// whose value follows from the relations by any linear combination, not
// only one relation at a time (two relations with two unknowns each can
// pin both, as a table's row and column totals can). It brings the
// relations' equations over the hidden counts to reduced row echelon form;
// a hidden count is determined exactly when a row of that form has it as
// its only unknown.
func (s *suppressor) determined() map[*cell]bool {
	col := map[*cell]int{}
	var hidden []*cell
	for _, c := range s.cells {
		if c.hidden {
			col[c] = len(hidden)
			hidden = append(hidden, c)
		}
	}
	var m [][]float64
	for _, r := range s.relations {
		row := make([]float64, len(hidden))
		touched := false
		for _, p := range r.parts {
			if i, ok := col[p]; ok {
				row[i]++
				touched = true
			}
		}
		if i, ok := col[r.whole]; ok {
			row[i]--
			touched = true
		}
		if touched {
			m = append(m, row)
		}
	}
	out := map[*cell]bool{}
	for _, row := range reduce(m) {
		pivot, others := -1, false
		for j, v := range row {
			if math.Abs(v) < epsilon {
				continue
			}
			if pivot < 0 {
				pivot = j
			} else {
				others = true
			}
		}
		if pivot >= 0 && !others {
			out[hidden[pivot]] = true
		}
	}
	return out
}

// epsilon tells zero from not zero in the elimination; the matrices hold
// small integers, so rounding never comes near it.
const epsilon = 1e-9

// reduce brings m to reduced row echelon form in place and returns its
// non-zero rows.
func reduce(m [][]float64) [][]float64 {
	rank := 0
	for c := 0; len(m) > 0 && c < len(m[0]) && rank < len(m); c++ {
		pivot := -1
		for r := rank; r < len(m); r++ {
			if math.Abs(m[r][c]) > epsilon && (pivot < 0 || math.Abs(m[r][c]) > math.Abs(m[pivot][c])) {
				pivot = r
			}
		}
		if pivot < 0 {
			continue
		}
		m[rank], m[pivot] = m[pivot], m[rank]
		p := m[rank][c]
		for j := range m[rank] {
			m[rank][j] /= p
		}
		for r := range m {
			if r != rank && math.Abs(m[r][c]) > epsilon {
				f := m[r][c]
				for j := range m[r] {
					m[r][j] -= f * m[rank][j]
				}
			}
		}
		rank++
	}
	return m[:rank]
}

// hideNextTo hides the smallest shown count in a relation with c, which
// the shown counts give away: a part if one shows, else a total. It
// reports whether it hid anything.
func (s *suppressor) hideNextTo(c *cell) bool {
	var pick *cell
	consider := func(x *cell) {
		if !x.hidden && (pick == nil || x.value < pick.value) {
			pick = x
		}
	}
	with := func(r relation) bool { return r.whole == c || slices.Contains(r.parts, c) }
	for _, r := range s.relations {
		if with(r) {
			for _, p := range r.parts {
				consider(p)
			}
		}
	}
	if pick == nil {
		for _, r := range s.relations {
			if with(r) {
				consider(r.whole)
			}
		}
	}
	if pick == nil {
		return s.hideConnected(c)
	}
	pick.hidden = true
	return true
}

// hideMore hides the smallest shown part of relation i, or its whole when
// no part shows; with nothing left to hide, everything connected to it. It
// reports whether it hid anything.
func (s *suppressor) hideMore(i int) bool {
	r := s.relations[i]
	var pick *cell
	for _, p := range r.parts {
		if !p.hidden && (pick == nil || p.value < pick.value) {
			pick = p
		}
	}
	if pick == nil && !r.whole.hidden {
		pick = r.whole
	}
	if pick != nil {
		pick.hidden = true
		return true
	}
	return s.hideConnected(r.whole)
}

// hideConnected hides every cell linked to c through relations, and
// reports whether one was shown before.
func (s *suppressor) hideConnected(c *cell) bool {
	seen := map[*cell]bool{c: true}
	for grown := true; grown; {
		grown = false
		for _, r := range s.relations {
			all := append([]*cell{r.whole}, r.parts...)
			touches := false
			for _, x := range all {
				touches = touches || seen[x]
			}
			if !touches {
				continue
			}
			for _, x := range all {
				if !seen[x] {
					seen[x], grown = true, true
				}
			}
		}
	}
	hid := false
	for x := range seen {
		hid = hid || !x.hidden
		x.hidden = true
	}
	return hid
}

// Count is a count as the analyst sees it.
type Count struct {
	// N is the count; 0 when Suppressed.
	N int
	// Suppressed says that the count is hidden: too few cases make it up,
	// or it would give a hidden count away.
	Suppressed bool
}

// count returns the cell as shown.
func (c *cell) count() Count {
	if c.hidden {
		return Count{Suppressed: true}
	}
	return Count{N: c.value}
}
