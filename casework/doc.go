// Package casework is the domain of Koers: the rules of a client's
// trajectory (traject) from opening to close, as pure functions over the
// events of koers.case.v1.
//
// A case's State is the fold of its events with Evolve (Replay folds a whole
// history). A command is one use of the case, a struct such as OpenCase or
// RecordCheckpoint; Decide checks it against the state and answers with the
// events that record it, or with an error:
//
//   - a *ValidationError when the command's own fields are wrong (the same
//     field violations its Validate method returns), and
//   - an error wrapping one of the *Error values of this package when the
//     case's state forbids the command; its Reason is a stable machine
//     string and its Kind says how the edge reports it.
//
// Either way nothing is decided and the case is unchanged.
//
// The package does no I/O and knows no clock: every date comes in a
// command, and the statutory deadline calculator (Schedule) takes the
// instant it should judge at. Personal data passes through only as
// koers.event.v1.Sealed values, which the services layer encrypted.
package casework
