package casework

import (
	"fmt"
	"time"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Date is a calendar day in the practice's own calendar, without a time of
// day or a zone: the day of a session, a sick report or a placement. The
// zero Date means "not given".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Years a Date may fall in; anything outside is a typing error.
const (
	minYear = 1900
	maxYear = 2199
)

// DateOf returns the calendar day of t in t's own location. Callers pass the
// instant in the practice's location (for example Europe/Amsterdam), since a
// late-evening UTC instant is already the next day there.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// DateFromProto returns the Date a koers.case.v1.Date holds; nil gives the
// zero Date.
func DateFromProto(p *casev1.Date) Date {
	if p == nil {
		return Date{}
	}
	return Date{Year: int(p.GetYear()), Month: time.Month(p.GetMonth()), Day: int(p.GetDay())}
}

// Proto returns d as a koers.case.v1.Date, or nil for the zero Date, so that
// an unset date stays unset on the wire.
func (d Date) Proto() *casev1.Date {
	if d.IsZero() {
		return nil
	}
	return &casev1.Date{Year: int32(d.Year), Month: int32(d.Month), Day: int32(d.Day)}
}

// IsZero reports whether d is the zero Date, "not given".
func (d Date) IsZero() bool { return d == Date{} }

// IsValid reports whether d is a real calendar day (no 30 February) in the
// years 1900 to 2199.
func (d Date) IsValid() bool {
	if d.Year < minYear || d.Year > maxYear {
		return false
	}
	return DateOf(d.midnight()) == d
}

// AddDays returns the day n days after d (before it when n is negative).
func (d Date) AddDays(n int) Date { return DateOf(d.midnight().AddDate(0, 0, n)) }

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool { return d.midnight().Before(e.midnight()) }

// After reports whether d is a later day than e.
func (d Date) After(e Date) bool { return e.Before(d) }

// DaysSince returns how many days lie from e to d: 0 on the same day,
// negative when d is earlier.
func (d Date) DaysSince(e Date) int {
	return int(d.midnight().Sub(e.midnight()).Hours() / 24)
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// midnight is d's start in UTC, where every day has 24 hours, so day
// arithmetic never meets a daylight-saving jump.
func (d Date) midnight() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }
