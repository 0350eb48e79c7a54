package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koers-io/koers/casework"
	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// Page sizes of ListCases.
const (
	// DefaultPageSize is the page size when none is asked.
	DefaultPageSize = 50
	// MaxPageSize is the largest page; larger requests get this many.
	MaxPageSize = 500
)

// ErrInvalidPageToken is returned for a page token that ListCases did not
// make, or made for other filters.
var ErrInvalidPageToken = errors.New("dashboard: invalid page token")

// Filter selects the cases ListCases returns. Empty fields do not filter.
type Filter struct {
	// Tenant is required: the tenant whose cases these are.
	Tenant string
	// Coach selects one coach's cases.
	Coach string
	// Stages selects cases in any of the stages; empty means the active
	// stages (opened up to re-integration), so closed and erased cases
	// show only when asked for.
	Stages []casev1.Stage
	// QuestionTypes selects cases with any of the question types.
	QuestionTypes []casev1.QuestionType
	// Organisation and Department select an employer and a department of
	// it.
	Organisation, Department string
	// OverdueOnly selects cases with at least one overdue statutory
	// deadline on the day of Now.
	OverdueOnly bool
	// IdleDays > 0 selects cases without activity for more than this many
	// days before Now.
	IdleDays int
	// Now is the instant overdue and idle are judged at.
	Now time.Time
}

// List is one page of cases.
type List struct {
	// Cases are the page's cases, newest opening first (ties by case ID,
	// descending), each with its next and overdue deadlines.
	Cases []Case
	// NextPageToken continues the listing; empty on the last page.
	NextPageToken string
	// Today is the day overdue was judged on.
	Today casework.Date
}

// ListCases returns a page of the cases f selects, judged on the day of
// f.Now in loc. pageSize 0 means DefaultPageSize; above MaxPageSize it is
// MaxPageSize. pageToken is empty for the first page, or a NextPageToken
// of an earlier call with the same filter (except Now).
func ListCases(ctx context.Context, db Querier, loc *time.Location, f Filter, pageSize int, pageToken string) (List, error) {
	if f.Tenant == "" || f.Now.IsZero() {
		return List{}, fmt.Errorf("%w: tenant and now are required", ErrInvalidQuery)
	}
	if pageSize < 0 || f.IdleDays < 0 || f.IdleDays > MaxDays {
		return List{}, fmt.Errorf("%w: page size %d or idle days %d out of range", ErrInvalidQuery, pageSize, f.IdleDays)
	}
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	today := casework.DateOf(f.Now.In(loc))
	where, args := f.where(today)
	digest := f.digest()
	if pageToken != "" {
		after, err := decodeToken(pageToken, digest)
		if err != nil {
			return List{}, err
		}
		where += ` AND (c.opened_on < ? OR (c.opened_on = ? AND c.case_id < ?))`
		args = append(args, after.openedOn, after.openedOn, after.caseID)
	}
	cases, err := selectCasesSuffix(ctx, db, where, ` ORDER BY c.opened_on DESC, c.case_id DESC LIMIT ?`, append(args, pageSize+1)...)
	if err != nil {
		return List{}, fmt.Errorf("dashboard: list cases: %w", err)
	}
	list := List{Today: today}
	if len(cases) > pageSize {
		cases = cases[:pageSize]
		last := cases[len(cases)-1]
		list.NextPageToken = encodeToken(pageCursor{openedOn: day(last.OpenedOn), caseID: last.CaseID}, digest)
	}
	if len(cases) > 0 {
		ids := make([]any, len(cases))
		for i, c := range cases {
			ids[i] = c.CaseID
		}
		open, err := openDeadlines(ctx, db, `d.case_id IN (`+inList(len(ids))+`)`, ids...)
		if err != nil {
			return List{}, fmt.Errorf("dashboard: list cases: deadlines: %w", err)
		}
		judge(cases, open, f.Now, today)
	}
	list.Cases = cases
	return list, nil
}

// where builds the filter's condition over {cases} c.
func (f Filter) where(today casework.Date) (string, []any) {
	conds := []string{`c.tenant_id = ?`}
	args := []any{f.Tenant}
	if f.Coach != "" {
		conds = append(conds, `c.coach_id = ?`)
		args = append(args, f.Coach)
	}
	stages := f.Stages
	if len(stages) == 0 {
		conds = append(conds, `c.stage BETWEEN ? AND ?`)
		args = append(args, int(firstActiveStage), int(lastActiveStage))
	} else {
		conds = append(conds, `c.stage IN (`+inList(len(stages))+`)`)
		for _, s := range stages {
			args = append(args, int(s))
		}
	}
	if len(f.QuestionTypes) > 0 {
		conds = append(conds, `c.question_type IN (`+inList(len(f.QuestionTypes))+`)`)
		for _, t := range f.QuestionTypes {
			args = append(args, int(t))
		}
	}
	if f.Organisation != "" {
		conds = append(conds, `c.organisation_id = ?`)
		args = append(args, f.Organisation)
	}
	if f.Department != "" {
		conds = append(conds, `c.department = ?`)
		args = append(args, f.Department)
	}
	if f.IdleDays > 0 {
		conds = append(conds, `c.last_activity_at < ?`)
		args = append(args, f.Now.Add(-time.Duration(f.IdleDays)*24*time.Hour).UnixMicro())
	}
	if f.OverdueOnly {
		conds = append(conds, `c.earliest_due > 0 AND c.earliest_due < ?`)
		args = append(args, day(today))
	}
	return strings.Join(conds, ` AND `), args
}

// digest fingerprints the filter, Now left out, so that a page token is
// refused with other filters rather than silently skipping cases.
func (f Filter) digest() uint64 {
	stages := slices.Clone(f.Stages)
	slices.Sort(stages)
	types := slices.Clone(f.QuestionTypes)
	slices.Sort(types)
	key := fmt.Sprintf("%q|%q|%v|%v|%q|%q|%t|%d", f.Tenant, f.Coach, stages, types, f.Organisation, f.Department, f.OverdueOnly, f.IdleDays)
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])
}

// pageCursor is where a page ended: the last case's opening day and ID.
type pageCursor struct {
	openedOn int
	caseID   string
}

// encodeToken makes the opaque page token "v1.<opened_on>.<case_id>.<digest>"
// in unpadded base64url.
func encodeToken(c pageCursor, digest uint64) string {
	raw := "v1." + strconv.Itoa(c.openedOn) + "." + c.caseID + "." + strconv.FormatUint(digest, 16)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeToken(token string, digest uint64) (pageCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return pageCursor{}, fmt.Errorf("%w: not base64url", ErrInvalidPageToken)
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return pageCursor{}, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	opened, err1 := strconv.Atoi(parts[1])
	d, err2 := strconv.ParseUint(parts[3], 16, 64)
	if err1 != nil || err2 != nil || parts[2] == "" {
		return pageCursor{}, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	if d != digest {
		return pageCursor{}, fmt.Errorf("%w: made for other filters", ErrInvalidPageToken)
	}
	return pageCursor{openedOn: opened, caseID: parts[2]}, nil
}
