package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The sections of a report: each reads its cells with as few passes over
// the read model as it can, and relates them for suppression.

// builder collects a report's cells.
type builder struct {
	q Query
	// latest: a report of now, which reads the current versions.
	latest           bool
	from, to         int
	asOf             int64
	asOfDay          int
	s                suppressor
	active           cell
	byContextType    map[[2]int]*cell
	byQuadrant       map[Quadrant]*cell
	byCoach          map[string]*cell
	reclassTotal     cell
	reclass          map[[2]int]*cell
	out              outplacementCells
	bands            map[AgeBand]*outplacementCells
	checkpoints      cell
	complianceCells  map[[2]int]*cell
	byKind, byStatus map[int]*cell
	ended            cell
	endedBy          map[casev1.CloseOutcome]*cell
}

// scope returns the condition selecting the query's tenant, organisation
// and department in the table aliased a.
func (b *builder) scope(a string) (string, []any) {
	cond, args := a+".tenant_id = ?", []any{b.q.Tenant}
	if b.q.Organisation != "" {
		cond, args = cond+" AND "+a+".organisation_id = ?", append(args, b.q.Organisation)
	}
	if b.q.Department != "" {
		cond, args = cond+" AND "+a+".department = ?", append(args, b.q.Department)
	}
	return cond, args
}

// known is the condition selecting the versions of table alias a valid at
// the as-of instant. A report of now reads the current versions, which
// are exactly those valid at any instant after the last one recorded; the
// equality lets an index deliver them in the order of its next columns,
// so that grouping by those (coach, case) streams instead of sorting. A
// report as of a past instant reads a range of versions.
func (b *builder) known(a string) (string, []any) {
	if b.latest {
		return a + ".known_to = ?", []any{int64(current)}
	}
	return a + ".known_from <= ? AND " + a + ".known_to > ?", []any{b.asOf, b.asOf}
}

func (b *builder) where(a string, extra string, extraArgs ...any) (string, []any) {
	sc, sa := b.scope(a)
	kn, ka := b.known(a)
	return sc + " AND " + kn + " AND " + extra, append(append(sa, ka...), extraArgs...)
}

// each runs a query and calls row for each row it returns.
func each(ctx context.Context, db Querier, query string, args []any, row func(scan func(...any) error) error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

var (
	contexts = []casev1.OrganisationalContext{0, 1, 2, 3}
	types    = []casev1.QuestionType{0, 1, 2, 3, 4}
)

// casesWhere is the condition selecting the versions of the cases open
// in the period. A period without a first day needs no condition on the
// closing (a case closed on day 0 does not exist), which spares a test of
// every version read.
func (b *builder) casesWhere() (string, []any) {
	if b.from == 0 {
		return b.where("c", "c.opened_on <= ?", b.to)
	}
	return b.where("c", "c.opened_on <= ? AND (c.closed_on = 0 OR c.closed_on >= ?)", b.to, b.from)
}

// caseCells counts the cases open in the period by context and question
// type and by mobility quadrant.
func (b *builder) caseCells(ctx context.Context, db Querier) error {
	b.byContextType = map[[2]int]*cell{}
	for _, c := range contexts {
		for _, t := range types {
			b.byContextType[[2]int{int(c), int(t)}] = &cell{}
		}
	}
	b.byQuadrant = map[Quadrant]*cell{}
	for q := QuadrantNotAssessed; q <= QuadrantNeither; q++ {
		b.byQuadrant[q] = &cell{}
	}
	where, args := b.casesWhere()
	// Every (context, question type, quadrant) cell is one seek of the
	// index, counted without a GROUP BY (UNION ALL of the 100 fixed
	// cells); the cases add up to the active ones. (A case with an enum
	// value newer than this code falls in no cell and is not counted; a
	// new value changes the projection's version anyway.)
	var parts []string
	var all []any
	for _, c := range contexts {
		for _, t := range types {
			for q := QuadrantNotAssessed; q <= QuadrantNeither; q++ {
				parts = append(parts, fmt.Sprintf(`SELECT %d, %d, %d, COUNT(*) FROM {cases} c
					WHERE %s AND c.context = %d AND c.question_type = %d AND c.quadrant = %d`, c, t, q, where, c, t, q))
				all = append(all, args...)
			}
		}
	}
	return each(ctx, db, strings.Join(parts, "\nUNION ALL\n"), all,
		func(scan func(...any) error) error {
			var context, qt, quadrant, n int
			if err := scan(&context, &qt, &quadrant, &n); err != nil {
				return err
			}
			b.active.add(n, n)
			cellOf(b.byContextType, [2]int{context, qt}).add(n, n)
			cellOf(b.byQuadrant, Quadrant(quadrant)).add(n, n)
			return nil
		})
}

// caseload counts the cases open in the period by coach.
func (b *builder) caseload(ctx context.Context, db Querier) error {
	b.byCoach = map[string]*cell{}
	where, args := b.casesWhere()
	return each(ctx, db, `SELECT c.coach_id, COUNT(*) FROM {cases} c WHERE `+where+` GROUP BY c.coach_id`, args,
		func(scan func(...any) error) error {
			var coach string
			var n int
			if err := scan(&coach, &n); err != nil {
				return err
			}
			cellOf(b.byCoach, coach).add(n, n)
			return nil
		})
}

// relateCases registers the cases' cells for suppression.
func (b *builder) relateCases() {
	b.s.track(&b.active)
	b.s.relate(&b.active, b.s.trackAll(sortedCells(b.byContextType, comparePairs))...)
	b.s.relate(&b.active, b.s.trackAll(sortedCells(b.byQuadrant, cmp.Compare[Quadrant]))...)
	b.s.relate(&b.active, b.s.trackAll(sortedCells(b.byCoach, cmp.Compare[string]))...)
}

// reclassifications counts the reclassifications of the period by type
// from and to: every cell is one seek of the index (UNION ALL of the fixed
// cells) instead of a sorted GROUP BY. A cell's distinct cases are its
// rows that do not repeat an earlier move of their case between the same
// types; when the earlier one falls outside the period this counts too few
// cases, never too many, which can only hide more.
func (b *builder) reclassifications(ctx context.Context, db Querier) error {
	b.reclass = map[[2]int]*cell{}
	var keys [][2]int
	for _, f := range types[1:] {
		for _, t := range types[1:] {
			if f != t {
				keys = append(keys, [2]int{int(f), int(t)})
				b.reclass[keys[len(keys)-1]] = &cell{}
			}
		}
	}
	sc, sa := b.scope("r")
	cond := sc + " AND r.occurred_on BETWEEN ? AND ?"
	args := append(sa, b.from, b.to)
	if !b.latest {
		cond, args = cond+" AND r.recorded_at <= ?", append(args, b.asOf)
	}
	var parts []string
	var all []any
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf(`SELECT %d, %d, COUNT(*), COUNT(*) - COALESCE(SUM(r.repeat_pair), 0) FROM {reclassifications} r
			WHERE %s AND r.from_type = %d AND r.to_type = %d`, k[0], k[1], cond, k[0], k[1]))
		all = append(all, args...)
	}
	// The total, its distinct cases, and anything outside the fixed cells
	// (a type newer than this code).
	parts = append(parts, `SELECT 0, 0, COUNT(*), COUNT(*) - COALESCE(SUM(r.repeat_case), 0) FROM {reclassifications} r WHERE `+cond)
	all = append(all, args...)
	total := 0
	err := each(ctx, db, strings.Join(parts, "\nUNION ALL\n"), all,
		func(scan func(...any) error) error {
			var from, to, n, cases int
			if err := scan(&from, &to, &n, &cases); err != nil {
				return err
			}
			if from == 0 && to == 0 {
				b.reclassTotal.add(n, cases)
				return nil
			}
			cellOf(b.reclass, [2]int{from, to}).add(n, cases)
			total += n
			return nil
		})
	if err != nil {
		return err
	}
	if other := b.reclassTotal.value - total; other != 0 {
		// Reclassifications outside the known cells keep the relation
		// exact; they can only come from a newer schema.
		cellOf(b.reclass, [2]int{-1, -1}).add(other, other)
	}
	return nil
}

// relateReclassifications registers the matrix for suppression.
func (b *builder) relateReclassifications() {
	b.s.track(&b.reclassTotal)
	b.s.relate(&b.reclassTotal, b.s.trackAll(sortedCells(b.reclass, comparePairs))...)
}

// outplacementCells are the counts of a group of outplacements.
type outplacementCells struct {
	started   cell
	byPhase   map[casev1.OutplacementPhase]*cell
	byOutcome map[casev1.PlacementOutcome]*cell
	// days are the days to placement of the placed ones.
	days []int
}

var (
	phases   = []casev1.OutplacementPhase{1, 2, 3, 4, 5, 6}
	outcomes = []casev1.PlacementOutcome{
		casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL,
		casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL,
		casev1.PlacementOutcome_PLACEMENT_OUTCOME_SELF_EMPLOYED,
		casev1.PlacementOutcome_PLACEMENT_OUTCOME_NO_PLACEMENT,
		casev1.PlacementOutcome_PLACEMENT_OUTCOME_UNSPECIFIED,
	}
	bands = []AgeBand{AgeUnder40, Age40To56, Age57AndOver, AgeUnknown}
)

func newOutplacementCells() *outplacementCells {
	o := &outplacementCells{
		byPhase:   map[casev1.OutplacementPhase]*cell{},
		byOutcome: map[casev1.PlacementOutcome]*cell{},
	}
	for _, p := range phases {
		o.byPhase[p] = &cell{}
	}
	for _, oc := range outcomes {
		o.byOutcome[oc] = &cell{}
	}
	return o
}

// countedOutplacement is an outplacement as the report counts it: the cells
// it falls in (overall: started, phase, outcome; its age band's: started,
// outcome).
type countedOutplacement struct {
	caseID string
	cells  [5]*cell
}

// countOutplacements adds the rows to their cells: every row adds one to
// each of its cells, and each case one to each distinct cell of its rows.
// Most cases have a single outplacement in a period, so only the cases
// with more are grouped to find their distinct cells.
func countOutplacements(rows []countedOutplacement) {
	perCase := make(map[string]int32, len(rows))
	for _, r := range rows {
		perCase[r.caseID]++
	}
	var several map[string][]*cell
	for _, r := range rows {
		for _, c := range r.cells {
			c.value++
		}
		if perCase[r.caseID] == 1 {
			for _, c := range r.cells {
				c.cases++
			}
			continue
		}
		if several == nil {
			several = map[string][]*cell{}
		}
		for _, c := range r.cells {
			if !slices.Contains(several[r.caseID], c) {
				several[r.caseID] = append(several[r.caseID], c)
				c.cases++
			}
		}
	}
}

// outplacements counts the outplacements started in the period. Every
// cell of age band, furthest phase and outcome is one seek of the index
// (UNION ALL of the 120 fixed cells), counted next to the total of all;
// the days to placement of the placed ones are read from their cells; and
// the few cases with more than one outplacement in the period (one of
// them has a seq above 1) are read whole, to count each case once in
// every cell. Should the cells not add up to the total (a value newer
// than this code), the outplacements are read and counted one by one, as
// they are for one organisation, whose few outplacements take less time
// to read than the 200 seeks.
func (b *builder) outplacements(ctx context.Context, db Querier) error {
	b.initOutplacements()
	if b.q.Organisation != "" {
		return b.outplacementsOneByOne(ctx, db)
	}
	where, args := b.where("o", "o.started_on BETWEEN ? AND ?", b.from, b.to)
	type key struct{ band, phase, outcome int }
	counts := map[key]int{}
	total, sum, repeats := 0, 0, 0
	var parts, placedParts []string
	var all, placedArgs []any
	for _, band := range bands {
		for _, ph := range phases {
			for _, oc := range outcomes {
				cond := fmt.Sprintf("%s AND o.age_band = %d AND o.furthest_phase = %d AND o.outcome = %d", where, band, ph, oc)
				parts = append(parts, fmt.Sprintf(`SELECT %d, %d, %d, COUNT(*), COALESCE(SUM(CASE WHEN o.seq > 1 THEN 1 ELSE 0 END), 0)
					FROM {outplacements} o WHERE %s`, band, ph, oc, cond))
				all = append(all, args...)
				if placed(oc) {
					placedParts = append(placedParts, fmt.Sprintf(`SELECT %d, o.days_to_placement FROM {outplacements} o WHERE %s`, band, cond))
					placedArgs = append(placedArgs, args...)
				}
			}
		}
	}
	parts = append(parts, `SELECT -1, -1, -1, COUNT(*), 0 FROM {outplacements} o WHERE `+where)
	all = append(all, args...)
	err := each(ctx, db, strings.Join(parts, "\nUNION ALL\n"), all, func(scan func(...any) error) error {
		var k key
		var n, later int
		if err := scan(&k.band, &k.phase, &k.outcome, &n, &later); err != nil {
			return err
		}
		switch {
		case k.band < 0:
			total = n
		case n > 0:
			counts[k] = n
			sum += n
			repeats += later
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sum != total {
		b.initOutplacements()
		return b.outplacementsOneByOne(ctx, db)
	}
	for k, n := range counts {
		for _, c := range b.outplacementCells(AgeBand(k.band), casev1.OutplacementPhase(k.phase), casev1.PlacementOutcome(k.outcome)) {
			c.add(n, n)
		}
	}
	err = each(ctx, db, strings.Join(placedParts, "\nUNION ALL\n"), placedArgs, func(scan func(...any) error) error {
		var band, days int
		if err := scan(&band, &days); err != nil {
			return err
		}
		b.out.days = append(b.out.days, days)
		b.bands[AgeBand(band)].days = append(b.bands[AgeBand(band)].days, days)
		return nil
	})
	if err != nil || repeats == 0 {
		return err
	}
	return b.uncountRepeats(ctx, db, where, args)
}

// uncountRepeats takes the repeats out of the outplacement cells' cases:
// a case with several outplacements in a cell is one case there.
func (b *builder) uncountRepeats(ctx context.Context, db Querier, where string, args []any) error {
	inner := strings.ReplaceAll(where, "o.", "r.")
	perCase := map[string][]*cell{}
	var order []string
	// The cases first, so that their outplacements are read by case (a
	// CROSS JOIN keeps SQLite to that order).
	err := each(ctx, db, `SELECT o.case_id, o.age_band, o.furthest_phase, o.outcome
		FROM (SELECT DISTINCT r.case_id AS case_id FROM {outplacements} r WHERE `+inner+` AND r.seq > 1) c
		CROSS JOIN {outplacements} o
		WHERE o.case_id = c.case_id AND `+where,
		append(append([]any{}, args...), args...),
		func(scan func(...any) error) error {
			var caseID string
			var band, phase, outcome int
			if err := scan(&caseID, &band, &phase, &outcome); err != nil {
				return err
			}
			if _, ok := perCase[caseID]; !ok {
				order = append(order, caseID)
			}
			perCase[caseID] = append(perCase[caseID],
				b.outplacementCells(AgeBand(band), casev1.OutplacementPhase(phase), casev1.PlacementOutcome(outcome))...)
			return nil
		})
	if err != nil {
		return err
	}
	for _, id := range order {
		seen := map[*cell]bool{}
		for _, c := range perCase[id] {
			if seen[c] {
				c.cases--
			}
			seen[c] = true
		}
	}
	return nil
}

// initOutplacements makes the outplacement cells, all zero.
func (b *builder) initOutplacements() {
	b.out = *newOutplacementCells()
	b.bands = map[AgeBand]*outplacementCells{}
	for _, band := range bands {
		b.bands[band] = newOutplacementCells()
	}
}

// outplacementCells returns the cells an outplacement of a band, furthest
// phase and outcome counts in: overall started, phase and outcome; its
// band's started and outcome.
func (b *builder) outplacementCells(band AgeBand, ph casev1.OutplacementPhase, oc casev1.PlacementOutcome) []*cell {
	bc := b.bands[band]
	return []*cell{&b.out.started, cellOf(b.out.byPhase, ph), cellOf(b.out.byOutcome, oc), &bc.started, cellOf(bc.byOutcome, oc)}
}

// outplacementsOneByOne reads the outplacements started in the period and
// counts them in Go, whatever their values.
func (b *builder) outplacementsOneByOne(ctx context.Context, db Querier) error {
	where, args := b.where("o", "o.started_on BETWEEN ? AND ?", b.from, b.to)
	var rows []countedOutplacement
	err := each(ctx, db, `SELECT o.case_id, o.age_band, o.furthest_phase, o.outcome, o.days_to_placement
		FROM {outplacements} o WHERE `+where, args,
		func(scan func(...any) error) error {
			var caseID string
			var band, phase, outcome, days int
			if err := scan(&caseID, &band, &phase, &outcome, &days); err != nil {
				return err
			}
			ph, oc := casev1.OutplacementPhase(phase), casev1.PlacementOutcome(outcome)
			bc := b.bands[AgeBand(band)]
			if bc == nil {
				return fmt.Errorf("age band %d unknown", band)
			}
			rows = append(rows, countedOutplacement{caseID: caseID, cells: [5]*cell{
				&b.out.started, cellOf(b.out.byPhase, ph), cellOf(b.out.byOutcome, oc), &bc.started, cellOf(bc.byOutcome, oc),
			}})
			if placed(oc) {
				b.out.days = append(b.out.days, days)
				bc.days = append(bc.days, days)
			}
			return nil
		})
	if err != nil {
		return err
	}
	countOutplacements(rows)
	return nil
}

// relateOutplacements registers the outplacements' cells for suppression.
func (b *builder) relateOutplacements() {
	b.s.track(&b.out.started)
	b.s.relate(&b.out.started, b.s.trackAll(sortedCells(b.out.byPhase, cmp.Compare[casev1.OutplacementPhase]))...)
	overall := b.s.trackAll(cellsIn(b.out.byOutcome, outcomes))
	b.s.relate(&b.out.started, overall...)
	var bandStarts []*cell
	for _, band := range bands {
		bc := b.bands[band]
		b.s.track(&bc.started)
		bandStarts = append(bandStarts, &bc.started)
		b.s.relate(&bc.started, b.s.trackAll(cellsIn(bc.byOutcome, outcomes))...)
	}
	b.s.relate(&b.out.started, bandStarts...)
	for i, oc := range outcomes {
		var perBand []*cell
		for _, band := range bands {
			perBand = append(perBand, b.bands[band].byOutcome[oc])
		}
		b.s.relate(overall[i], perBand...)
	}
}

func placed(o casev1.PlacementOutcome) bool {
	switch o {
	case casev1.PlacementOutcome_PLACEMENT_OUTCOME_INTERNAL, casev1.PlacementOutcome_PLACEMENT_OUTCOME_EXTERNAL,
		casev1.PlacementOutcome_PLACEMENT_OUTCOME_SELF_EMPLOYED:
		return true
	}
	return false
}

// Statuses of a judged deadline, as casework names them; missing is
// StatusOverdue.
var complianceStatuses = []casework.DeadlineStatus{
	casework.StatusDoneOnTime, casework.StatusDoneLate, casework.StatusDoneEarly, casework.StatusOverdue,
}

// compliance counts the judged deadlines due in the period by kind and
// status: done (on time, late, early), or missing — not done, last day
// before the as-of day. Moot deadlines (after their re-integration ended)
// have no version valid after the end, so they are not there to count.
//
// Each cell counts its deadlines and its distinct cases, and is one seek
// of the index (UNION ALL of the 44 fixed cells) followed by the range of
// versions valid at the instant; in a report of now the progress reviews
// then stream by case without a sort. The progress reviews (reviews) and
// the other kinds are two queries, which take about as long each.
//
// Row and column totals, and the grand total, get a lower bound of their
// distinct cases instead of a second pass (complianceTotals): the most
// cases of any one of their cells. Bounding from below can only hide
// more, never show a count made of fewer than k cases.
func (b *builder) compliance(ctx context.Context, db Querier, reviews bool) error {
	// status is the done status, or StatusOverdue while not done: the
	// condition reads only indexed columns.
	where, args := b.where("d", fmt.Sprintf("d.due BETWEEN ? AND ? AND (d.status <> %d OR d.due < ?)", int(casework.StatusOverdue)), b.from, b.to, b.asOfDay)
	// Progress reviews are a chain: one case has several in a cell, so
	// their cases are counted by grouping by case. Every other kind has
	// one deadline per re-integration, so its first re-integrations are
	// distinct cases.
	review := int(casev1.CheckpointKind_CHECKPOINT_KIND_PROGRESS_REVIEW)
	firsts := "COALESCE(SUM(CASE WHEN d.seq = 1 THEN 1 ELSE 0 END), 0)"
	var parts []string
	var all []any
	for k := casev1.CheckpointKind(1); k <= casev1.CheckpointKind_CHECKPOINT_KIND_WIA_DECISION; k++ {
		if (int(k) == review) != reviews {
			continue
		}
		for _, st := range complianceStatuses {
			cond := fmt.Sprintf("%s AND d.kind = %d AND d.status = %d", where, int(k), int(st))
			if int(k) == review {
				parts = append(parts, fmt.Sprintf(`SELECT %d, %d, COALESCE(SUM(j.n), 0), COUNT(*)
					FROM (SELECT d.case_id AS case_id, COUNT(*) AS n FROM {deadlines} d WHERE %s GROUP BY d.case_id) j`,
					int(k), int(st), cond))
			} else {
				parts = append(parts, fmt.Sprintf(`SELECT %d, %d, COUNT(*), %s FROM {deadlines} d WHERE %s`, int(k), int(st), firsts, cond))
			}
			all = append(all, args...)
		}
	}
	// The cells the query returns were all made by initCompliance, so the
	// two queries (reviews and the rest), which may run at once, only
	// read the map.
	return each(ctx, db, strings.Join(parts, "\nUNION ALL\n"), all, func(scan func(...any) error) error {
		var kind, status, n, cases int
		if err := scan(&kind, &status, &n, &cases); err != nil {
			return err
		}
		c := b.complianceCells[[2]int{kind, status}]
		if c == nil {
			return fmt.Errorf("compliance cell %d/%d unknown", kind, status)
		}
		c.add(n, cases)
		return nil
	})
}

// initCompliance makes the compliance cells, all zero.
func (b *builder) initCompliance() {
	b.complianceCells = map[[2]int]*cell{}
	b.byKind, b.byStatus = map[int]*cell{}, map[int]*cell{}
	for k := casev1.CheckpointKind(1); k <= casev1.CheckpointKind_CHECKPOINT_KIND_WIA_DECISION; k++ {
		b.byKind[int(k)] = &cell{}
		for _, st := range complianceStatuses {
			b.complianceCells[[2]int{int(k), int(st)}] = &cell{}
		}
	}
	for _, st := range complianceStatuses {
		b.byStatus[int(st)] = &cell{}
	}
}

// complianceTotals adds the compliance cells up into the row and column
// totals and the grand total.
func (b *builder) complianceTotals() {
	for key, c := range b.complianceCells {
		for _, total := range []*cell{cellOf(b.byKind, key[0]), cellOf(b.byStatus, key[1]), &b.checkpoints} {
			total.value += c.value
			total.cases = max(total.cases, c.cases)
		}
	}
}

// relateCompliance registers the compliance table for suppression.
func (b *builder) relateCompliance() {
	b.complianceTotals()
	b.s.track(&b.checkpoints)
	kinds := b.s.trackAll(sortedCells(b.byKind, cmp.Compare[int]))
	statuses := b.s.trackAll(cellsIn(b.byStatus, statusKeys()))
	b.s.relate(&b.checkpoints, kinds...)
	b.s.relate(&b.checkpoints, statuses...)
	for _, k := range sortedKeys(b.byKind, cmp.Compare[int]) {
		var row []*cell
		for _, st := range statusKeys() {
			row = append(row, cellOf(b.complianceCells, [2]int{k, st}))
		}
		b.s.relate(b.byKind[k], b.s.trackAll(row)...)
	}
	for _, st := range statusKeys() {
		var col []*cell
		for _, k := range sortedKeys(b.byKind, cmp.Compare[int]) {
			col = append(col, cellOf(b.complianceCells, [2]int{k, st}))
		}
		b.s.relate(b.byStatus[st], col...)
	}
}

func statusKeys() []int {
	out := make([]int, len(complianceStatuses))
	for i, s := range complianceStatuses {
		out[i] = int(s)
	}
	return out
}

// Close outcomes a re-integration's end is split by; any other is OTHER.
var endOutcomes = []casev1.CloseOutcome{
	casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER,
	casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER,
	casev1.CloseOutcome_CLOSE_OUTCOME_DISABILITY_BENEFIT,
	casev1.CloseOutcome_CLOSE_OUTCOME_EMPLOYMENT_ENDED,
	casev1.CloseOutcome_CLOSE_OUTCOME_OTHER,
}

// reintegrationEnds counts the re-integrations that ended in the period by
// the case's close outcome: every row is one seek of the index. A row's
// distinct cases are its first re-integrations: a case's second one counts
// as a case only when its first is elsewhere, so this may count too few
// cases, never too many.
func (b *builder) reintegrationEnds(ctx context.Context, db Querier) error {
	b.endedBy = map[casev1.CloseOutcome]*cell{}
	for _, o := range endOutcomes {
		b.endedBy[o] = &cell{}
	}
	var parts []string
	var all []any
	for _, o := range endOutcomes {
		where, args := b.where("r", "r.end_category = ? AND r.ended_on BETWEEN ? AND ?", int(o), max(b.from, 1), b.to)
		parts = append(parts, fmt.Sprintf(`SELECT %d, COUNT(*), COALESCE(SUM(CASE WHEN r.seq = 1 THEN 1 ELSE 0 END), 0)
			FROM {reintegrations} r WHERE %s`, int(o), where))
		all = append(all, args...)
	}
	err := each(ctx, db, strings.Join(parts, "\nUNION ALL\n"), all,
		func(scan func(...any) error) error {
			var outcome, n, cases int
			if err := scan(&outcome, &n, &cases); err != nil {
				return err
			}
			cellOf(b.endedBy, casev1.CloseOutcome(outcome)).add(n, cases)
			b.ended.add(n, cases)
			return nil
		})
	if err != nil {
		return err
	}
	return nil
}

// relateReintegrationEnds registers the ends for suppression.
func (b *builder) relateReintegrationEnds() {
	b.s.track(&b.ended)
	b.s.relate(&b.ended, b.s.trackAll(cellsIn(b.endedBy, endOutcomes))...)
}

// fill turns the suppressed cells into the report.
func (b *builder) fill(r *Report) {
	r.Cases.Active = b.active.count()
	for _, k := range sortedKeys(b.byContextType, comparePairs) {
		r.Cases.ByContextAndType = append(r.Cases.ByContextAndType, ContextTypeCount{
			Context: casev1.OrganisationalContext(k[0]), QuestionType: casev1.QuestionType(k[1]), Count: b.byContextType[k].count(),
		})
	}
	for _, q := range sortedKeys(b.byQuadrant, cmp.Compare[Quadrant]) {
		r.Cases.Mobility = append(r.Cases.Mobility, QuadrantCount{Quadrant: q, Count: b.byQuadrant[q].count()})
	}
	for _, coach := range sortedKeys(b.byCoach, cmp.Compare[string]) {
		r.Cases.Caseload = append(r.Cases.Caseload, CoachCount{CoachID: coach, Count: b.byCoach[coach].count()})
	}
	r.Reclassifications.Total = b.reclassTotal.count()
	for _, k := range sortedKeys(b.reclass, comparePairs) {
		r.Reclassifications.Matrix = append(r.Reclassifications.Matrix, ReclassificationCount{
			From: casev1.QuestionType(k[0]), To: casev1.QuestionType(k[1]), Count: b.reclass[k].count(),
		})
	}
	b.fillOutplacement(&r.Outplacement)
	b.fillReintegration(&r.Reintegration)
}

func (b *builder) fillOutplacement(o *Outplacement) {
	o.Started = b.out.started.count()
	for _, p := range sortedKeys(b.out.byPhase, cmp.Compare[casev1.OutplacementPhase]) {
		o.ByPhase = append(o.ByPhase, PhaseCount{Phase: p, Count: b.out.byPhase[p].count()})
	}
	o.ByOutcome = outcomeCounts(b.out.byOutcome)
	o.PlacementRate = placementRate(b.out.byOutcome)
	o.DaysToPlacement = daysOf(b.out.days, b.s.k)
	for _, band := range bands {
		bc := b.bands[band]
		o.ByAgeBand = append(o.ByAgeBand, AgeBandOutplacement{
			Band:            band,
			Started:         bc.started.count(),
			ByOutcome:       outcomeCounts(bc.byOutcome),
			PlacementRate:   placementRate(bc.byOutcome),
			DaysToPlacement: daysOf(bc.days, b.s.k),
		})
	}
}

func (b *builder) fillReintegration(ri *Reintegration) {
	ri.Checkpoints = b.checkpoints.count()
	for _, k := range sortedKeys(b.byKind, cmp.Compare[int]) {
		ri.ByKind = append(ri.ByKind, KindCount{Kind: casev1.CheckpointKind(k), Count: b.byKind[k].count()})
		for _, st := range complianceStatuses {
			ri.Compliance = append(ri.Compliance, ComplianceCount{
				Kind: casev1.CheckpointKind(k), Status: st, Count: cellOf(b.complianceCells, [2]int{k, int(st)}).count(),
			})
		}
	}
	for _, st := range complianceStatuses {
		ri.ByStatus = append(ri.ByStatus, StatusCount{Status: st, Count: b.byStatus[int(st)].count()})
	}
	ri.Ended = b.ended.count()
	for _, o := range endOutcomes {
		ri.ByOutcome = append(ri.ByOutcome, CloseOutcomeCount{Outcome: o, Count: b.endedBy[o].count()})
	}
	own, other := b.endedBy[endOutcomes[0]], b.endedBy[endOutcomes[1]]
	ri.ReturnToWorkRate = rate(own.value+other.value, b.ended.value, append([]*cell{&b.ended}, cellsIn(b.endedBy, endOutcomes)...))
}

func outcomeCounts(cells map[casev1.PlacementOutcome]*cell) []OutcomeCount {
	var out []OutcomeCount
	for _, oc := range outcomes {
		out = append(out, OutcomeCount{Outcome: oc, Count: cells[oc].count()})
	}
	return out
}

// placementRate is placed / concluded, shown when the four outcome counts
// it is made of show.
func placementRate(cells map[casev1.PlacementOutcome]*cell) Rate {
	parts := cellsIn(cells, outcomes[:4])
	placedN := parts[0].value + parts[1].value + parts[2].value
	return rate(placedN, placedN+parts[3].value, parts)
}

// rate is num/den, shown only when every cell it derives from shows.
func rate(num, den int, from []*cell) Rate {
	for _, c := range from {
		if c.hidden {
			return Rate{Suppressed: true}
		}
	}
	if den == 0 {
		return Rate{}
	}
	return Rate{Value: float64(num) / float64(den), OK: true}
}

// daysOf returns the median and p90 of days, shown when at least k values
// (and at least one) go into them.
func daysOf(days []int, k int) Days {
	if len(days) == 0 {
		return Days{}
	}
	if len(days) < k {
		return Days{Suppressed: true}
	}
	sorted := slices.Clone(days)
	slices.Sort(sorted)
	return Days{Median: Percentile(sorted, 0.5), P90: Percentile(sorted, 0.9), OK: true}
}

// Percentile returns the p-quantile (0 ≤ p ≤ 1) of sorted values by linear
// interpolation between the closest ranks: rank h = (n-1)p, value
// x[⌊h⌋] + (h-⌊h⌋)(x[⌊h⌋+1]-x[⌊h⌋]). It is computed in Go, from the
// fetched values, so SQLite and PostgreSQL give the same answer.
func Percentile(sorted []int, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	h := float64(len(sorted)-1) * p
	lo := int(h)
	if lo+1 >= len(sorted) {
		return float64(sorted[len(sorted)-1])
	}
	return float64(sorted[lo]) + (h-float64(lo))*float64(sorted[lo+1]-sorted[lo])
}

func comparePairs(a, b [2]int) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) }

// cellOf returns the cell of key in m, adding one for a key not seen
// before (an enum value newer than this code).
func cellOf[K comparable](m map[K]*cell, key K) *cell {
	c := m[key]
	if c == nil {
		c = &cell{}
		m[key] = c
	}
	return c
}

func sortedKeys[K comparable](m map[K]*cell, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

func sortedCells[K comparable](m map[K]*cell, compare func(a, b K) int) []*cell {
	var out []*cell
	for _, k := range sortedKeys(m, compare) {
		out = append(out, m[k])
	}
	return out
}

func cellsIn[K comparable](m map[K]*cell, keys []K) []*cell {
	out := make([]*cell, len(keys))
	for i, k := range keys {
		out[i] = cellOf(m, k)
	}
	return out
}
