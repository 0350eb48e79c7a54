package report

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// grid is a rows × columns grid of counts with row, column and grand
// totals, related as a report relates them.
type grid struct {
	cells         [][]*cell
	rows, columns []*cell
	total         *cell
	s             *suppressor
}

func newGrid(k int, values [][]int) *grid {
	t := &grid{s: &suppressor{k: k}, total: &cell{}}
	t.columns = make([]*cell, len(values[0]))
	for j := range t.columns {
		t.columns[j] = &cell{}
	}
	for _, row := range values {
		total := &cell{}
		var cells []*cell
		for j, v := range row {
			c := &cell{value: v, cases: v}
			cells = append(cells, c)
			total.add(v, v)
			t.columns[j].add(v, v)
			t.total.add(v, v)
		}
		t.cells = append(t.cells, cells)
		t.rows = append(t.rows, total)
	}
	t.s.track(t.total)
	t.s.relate(t.total, t.s.trackAll(t.rows)...)
	t.s.relate(t.total, t.s.trackAll(t.columns)...)
	for i, row := range t.cells {
		t.s.relate(t.rows[i], t.s.trackAll(row)...)
	}
	for j := range t.columns {
		var col []*cell
		for i := range t.cells {
			col = append(col, t.cells[i][j])
		}
		t.s.relate(t.columns[j], col...)
	}
	return t
}

func (t *grid) hidden() string {
	out := ""
	for _, row := range t.cells {
		for _, c := range row {
			if c.hidden {
				out += "-"
			} else {
				out += "x"
			}
		}
		out += "|"
	}
	return out
}

// checkRule fails unless the suppressed grid keeps the rule: primary
// cells hidden, no hidden count determined by the shown ones, and no
// relation with a known total whose hidden parts hold fewer than k.
func checkRule(t *testing.T, tb *grid) {
	t.Helper()
	s := tb.s
	for _, c := range s.cells {
		if c.cases < s.k && !c.hidden {
			t.Errorf("a count of %d cases shows", c.cases)
		}
	}
	given := s.determined()
	for _, c := range s.cells {
		if c.hidden && given[c] {
			t.Errorf("hidden count %d is determined by the shown ones: %s", c.value, tb.hidden())
		}
	}
	for _, r := range s.relations {
		if r.whole.hidden {
			continue
		}
		n, sum := 0, 0
		for _, p := range r.parts {
			if p.hidden {
				n++
				sum += p.value
			}
		}
		if n > 0 && sum < s.k {
			t.Errorf("a shown total of %d leaves %d hidden parts holding %d < k", r.whole.value, n, sum)
		}
	}
}

func TestSuppressionRule(t *testing.T) {
	cases := []struct {
		name   string
		values [][]int
		// want is the pattern of hidden cells ("-") among shown ones
		// ("x"), row by row; empty when only the rule is checked.
		want string
		// complementary says more cells than the small ones must hide.
		complementary bool
	}{
		{name: "nothing small", values: [][]int{{10, 12}, {9, 30}}, want: "xx|xx|"},
		{name: "one small cell takes neighbours with it", values: [][]int{{2, 12, 20}, {9, 30, 40}}, complementary: true},
		{name: "a small row", values: [][]int{{1, 2, 1}, {20, 30, 40}, {25, 35, 45}}, complementary: true},
		{name: "zeros hide too", values: [][]int{{0, 20}, {20, 20}}, complementary: true},
		{name: "a table too small for anything", values: [][]int{{1, 1}, {0, 1}}, want: "--|--|"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newGrid(5, tc.values)
			tb.s.run()
			got := tb.hidden()
			if tc.want != "" && got != tc.want {
				t.Errorf("hidden pattern %s, want %s", got, tc.want)
			}
			small, hidden := 0, 0
			for _, row := range tb.cells {
				for _, c := range row {
					if c.cases < 5 {
						small++
					}
					if c.hidden {
						hidden++
					}
				}
			}
			if tc.complementary && hidden <= small {
				t.Errorf("hidden pattern %s hides only the %d small cells", got, small)
			}
			checkRule(t, tb)
		})
	}
}

// TestSuppressionSeesThroughTwoTotals builds a grid where no single
// relation has one unknown, yet row and column totals together pin a
// cell: two blocks of hidden cells joined by one hidden cell (a bridge).
// Looking at one relation at a time would let it show.
func TestSuppressionSeesThroughTwoTotals(t *testing.T) {
	big := 50
	values := [][]int{
		{1, 1, big, big},
		{1, 1, 1, big},
		{big, big, 1, 1},
		{big, big, 1, 1},
	}
	tb := newGrid(2, values)
	for _, row := range tb.cells {
		for _, c := range row {
			c.hidden = c.cases < 2
		}
	}
	bridge := tb.cells[1][2]
	if !tb.s.determined()[bridge] {
		t.Fatal("the bridge cell is not determined before suppression: the test shows nothing")
	}
	for _, r := range tb.s.relations {
		unknown := 0
		for _, c := range append(r.parts, r.whole) {
			if c.hidden {
				unknown++
			}
		}
		if unknown == 1 {
			t.Fatal("a relation has a single unknown: the test does not need two totals")
		}
	}
	tb.s.run()
	checkRule(t, tb)
}

// TestSuppressionKeepsTheRule suppresses random sparse tables and checks
// the rule holds for every one.
func TestSuppressionKeepsTheRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		rows, cols := 1+rng.IntN(5), 1+rng.IntN(6)
		values := make([][]int, rows)
		for r := range values {
			values[r] = make([]int, cols)
			for c := range values[r] {
				if rng.IntN(3) > 0 {
					values[r][c] = rng.IntN(12)
				}
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tb := newGrid(5, values)
			tb.s.run()
			checkRule(t, tb)
		})
	}
}

func TestSuppressionOffWithKOne(t *testing.T) {
	tb := newGrid(1, [][]int{{0, 1}, {2, 3}})
	tb.s.run()
	if got := tb.hidden(); got != "xx|xx|" {
		t.Errorf("k=1 hid %s", got)
	}
}

// TestSuppressionEndsWhenNothingIsLeftToHide pins a hang found by the
// security matrix: a report with nothing in it (another tenant's empty
// report) has totals that the relations alone determine — a total with
// no parts is 0 — and once everything is hidden there is nothing left to
// hide next to them. The rule must stop there.
func TestSuppressionEndsWhenNothingIsLeftToHide(t *testing.T) {
	s := &suppressor{k: 5}
	lone, whole, part := &cell{}, &cell{}, &cell{}
	s.track(lone, whole, part)
	s.relate(lone)
	s.relate(whole, part)
	s.run()
	for i, c := range []*cell{lone, whole, part} {
		if !c.hidden {
			t.Errorf("cell %d of an empty report shows", i)
		}
	}
	tb := newGrid(5, [][]int{{0, 0}, {0, 0}})
	tb.s.run()
	checkRule(t, tb)
}
