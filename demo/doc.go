// Package demo generates a synthetic but realistic population of cases for
// one tenant and sends it to a running Koers through the public
// CaseService API, so that a new user sees full coach dashboards and
// organisational reports (`koers demo`).
//
// A Population has employers with departments, coaches and re-integration
// agencies, and any number of cases spread over the two years up to its
// Today. Each case follows one of four trajectories — coaching on the
// client's own request, coaching the employer asked for in an
// organisational context, outplacement, re-integration under the
// Gatekeeper Act — with intakes, reclassifications, referrals, consents,
// sessions, development plans, placements by the sector's figures per age
// band, statutory checkpoints (mostly on time, some late or missing),
// agencies, second tracks and closes. Trajectories that would go on past
// Today are running on it, so dashboards show active, idle, due and
// overdue work. Every name, e-mail address and organisation is made up.
//
// The generator decides each command with casework's own rules as it
// writes it, so a generated case is one the server accepts, and keeps the
// case's casework.State, which the Summary reads.
//
// # Determinism and running again
//
// Case i depends only on the seed, i and Today: its case ID, request IDs
// ("demo-<seed>-<case>-<step>") and every field. Sending a population
// again is answered as before and writes nothing, because the service
// recognises each request ID; a larger population adds cases. Anchor finds
// the Today of an earlier run from its case 0, which Run sends first, so a
// run on a later day continues the same population instead of sending
// other commands under the same request IDs (which the service refuses).
//
// # What the API dates
//
// Commands without a day of their own (ReclassifyQuestion, AssignCoach,
// ReferCase, consents, agencies, EraseClientData) are dated by the server
// when they arrive. In a back-filled history they therefore all happen
// "today": read models that date by occurrence show them as recent, and a
// case that received one looks active. The generator keeps such commands
// out of the cases it lets go idle, so that idle cases exist.
package demo
