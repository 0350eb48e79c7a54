package casework

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

func TestDateArithmeticCountsCalendarDays(t *testing.T) {
	cases := []struct {
		name string
		from Date
		days int
		want Date
	}{
		{"over a month's end", Date{2025, time.January, 30}, 3, Date{2025, time.February, 2}},
		{"over a leap day", Date{2028, time.February, 28}, 1, Date{2028, time.February, 29}},
		{"over the Dutch summer-time switch", Date{2025, time.March, 29}, 2, Date{2025, time.March, 31}},
		{"backwards over a year's end", Date{2025, time.January, 1}, -1, Date{2024, time.December, 31}},
		{"104 weeks", sickOn, 728, Date{2027, time.January, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.from.AddDays(tc.days)
			if got != tc.want {
				t.Errorf("%s + %d days = %s, want %s", tc.from, tc.days, got, tc.want)
			}
			if back := got.DaysSince(tc.from); back != tc.days {
				t.Errorf("DaysSince = %d, want %d", back, tc.days)
			}
		})
	}
}

func TestDateValidity(t *testing.T) {
	cases := []struct {
		d    Date
		want bool
	}{
		{Date{2028, time.February, 29}, true},
		{Date{2025, time.February, 29}, false},
		{Date{2025, time.April, 31}, false},
		{Date{2025, 13, 1}, false},
		{Date{2025, time.January, 0}, false},
		{Date{1899, time.December, 31}, false},
		{Date{1900, time.January, 1}, true},
		{Date{2199, time.December, 31}, true},
		{Date{2200, time.January, 1}, false},
		{Date{}, false},
	}
	for _, tc := range cases {
		if got := tc.d.IsValid(); got != tc.want {
			t.Errorf("%s valid = %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestDateProtoRoundTrip(t *testing.T) {
	d := Date{2025, time.March, 3}
	if diff := cmp.Diff(&casev1.Date{Year: 2025, Month: 3, Day: 3}, d.Proto(), protocmp.Transform()); diff != "" {
		t.Errorf("Proto (-want +got):\n%s", diff)
	}
	if got := DateFromProto(d.Proto()); got != d {
		t.Errorf("round trip = %s, want %s", got, d)
	}
	if (Date{}).Proto() != nil || !DateFromProto(nil).IsZero() {
		t.Error("the zero Date does not map to an unset field and back")
	}
	if got := d.String(); got != "2025-03-03" {
		t.Errorf("String = %q", got)
	}
}
