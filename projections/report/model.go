package report

import (
	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Quadrant is a place in the mobility quadrant: mobility willingness
// (mobiliteitsbereidheid) against mobility capacity (mobiliteitsvermogen),
// each scored 1 to 5 at the intake.
//
// A score of 3 or more counts as high. On a five-point scale 3 is the
// neutral middle; counting it high means "low" is reserved for clients who
// say or show they are unwilling (1–2) or unable (1–2), which is what an
// employer's mobility policy needs to find. The split is part of the
// projection's version: changing it rebuilds the read model.
type Quadrant int

// The quadrants, and the cases not placed in one.
const (
	// QuadrantNotAssessed: willingness or capacity was not scored.
	QuadrantNotAssessed Quadrant = iota
	// QuadrantWillingAndAble: both high — ready to move.
	QuadrantWillingAndAble
	// QuadrantWillingNotAble: willing, capacity low — needs development
	// before a move.
	QuadrantWillingNotAble
	// QuadrantAbleNotWilling: capable, willingness low — needs motivation.
	QuadrantAbleNotWilling
	// QuadrantNeither: both low.
	QuadrantNeither
)

// highScore is the lowest score that counts as high.
const highScore = 3

var quadrantNames = [...]string{"not assessed", "willing and able", "willing, not able", "able, not willing", "neither"}

// String names the quadrant.
func (q Quadrant) String() string {
	if q < 0 || int(q) >= len(quadrantNames) {
		return "unknown quadrant"
	}
	return quadrantNames[q]
}

// QuadrantOf places scores of willingness and capacity (1 to 5; 0 when not
// assessed) in the quadrant.
func QuadrantOf(willingness, capacity int) Quadrant {
	switch {
	case willingness <= 0 || capacity <= 0:
		return QuadrantNotAssessed
	case willingness >= highScore && capacity >= highScore:
		return QuadrantWillingAndAble
	case willingness >= highScore:
		return QuadrantWillingNotAble
	case capacity >= highScore:
		return QuadrantAbleNotWilling
	default:
		return QuadrantNeither
	}
}

// AgeBand is a client's age group, as the sector's placement figures use
// them: under 40, 40 to 56, 57 and over.
type AgeBand int

// The age bands.
const (
	// AgeUnknown: the client gave no year of birth.
	AgeUnknown AgeBand = iota
	AgeUnder40
	Age40To56
	Age57AndOver
)

var ageBandNames = [...]string{"unknown", "under 40", "40-56", "57 and over"}

// String names the band.
func (b AgeBand) String() string {
	if b < 0 || int(b) >= len(ageBandNames) {
		return "unknown band"
	}
	return ageBandNames[b]
}

// AgeBandAt returns the band of a client born in birthYear on day on.
// Koers holds the year of birth only, never the date, so the age is the
// age reached in on's year: a client born in 1985 counts as 40 all through
// 2025. An outplacement's band is taken at its start, so that its
// numerator and denominator (placed, started) share one band even when the
// client has a birthday in between.
func AgeBandAt(birthYear int, on casework.Date) AgeBand {
	if birthYear <= 0 || on.IsZero() {
		return AgeUnknown
	}
	switch age := on.Year - birthYear; {
	case age < 40:
		return AgeUnder40
	case age < 57:
		return Age40To56
	default:
		return Age57AndOver
	}
}

// endCategory is the row of the report's re-integration ends a case's close
// outcome counts in: the four outcomes of a re-integration, and OTHER for
// any other close (the coaching reached its goal, the client withdrew, …).
func endCategory(o casev1.CloseOutcome) casev1.CloseOutcome {
	switch o {
	case casev1.CloseOutcome_CLOSE_OUTCOME_RETURNED_TO_OWN_EMPLOYER, casev1.CloseOutcome_CLOSE_OUTCOME_WORK_WITH_OTHER_EMPLOYER,
		casev1.CloseOutcome_CLOSE_OUTCOME_DISABILITY_BENEFIT, casev1.CloseOutcome_CLOSE_OUTCOME_EMPLOYMENT_ENDED:
		return o
	}
	return casev1.CloseOutcome_CLOSE_OUTCOME_OTHER
}
