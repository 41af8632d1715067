package cairn

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors, one per error code of the Cairn contract. Every error the
// client returns for a failed call is an *Error, which matches the sentinel of
// its code with errors.Is:
//
//	if errors.Is(err, cairn.ErrNotFound) { ... }
var (
	ErrInvalidArgument   = errors.New("cairn: invalid argument")   // INVALID_ARGUMENT
	ErrNotFound          = errors.New("cairn: not found")          // NOT_FOUND
	ErrAlreadyExists     = errors.New("cairn: already exists")     // ALREADY_EXISTS
	ErrConflict          = errors.New("cairn: conflict")           // ABORTED: compare-and-set lost
	ErrResourceExhausted = errors.New("cairn: resource exhausted") // RESOURCE_EXHAUSTED
	ErrUnavailable       = errors.New("cairn: unavailable")        // UNAVAILABLE: retry with backoff
	ErrDataLoss          = errors.New("cairn: data loss")          // DATA_LOSS
	ErrUnauthenticated   = errors.New("cairn: unauthenticated")    // UNAUTHENTICATED
	// FAILED_PRECONDITION: the run or its thread does not allow the call
	// (reason THREAD_BUSY or RUN_FINISHED).
	ErrFailedPrecondition = errors.New("cairn: failed precondition")
)

// Errors of a call made under a run lease (heartbeat, fenced write, complete,
// fail) that the server refused because the worker must stop working on the
// run; nothing was stored. Such an error matches ErrRunStopped, the sentinel
// of its reason, and ErrConflict (its code is ABORTED):
//
//	if errors.Is(err, cairn.ErrRunStopped) { return } // another worker holds the run, or it was cancelled
var (
	ErrRunStopped   = errors.New("cairn: run stopped")    // any of the three below
	ErrLeaseLost    = errors.New("cairn: run lease lost") // LEASE_LOST: another claim is current
	ErrRunCancelled = errors.New("cairn: run cancelled")  // RUN_CANCELLED: it is CANCELLED now
	ErrRunTimedOut  = errors.New("cairn: run timed out")  // RUN_TIMED_OUT: it is FAILED now
)

var runStopReasons = map[string]error{"LEASE_LOST": ErrLeaseLost, "RUN_CANCELLED": ErrRunCancelled, "RUN_TIMED_OUT": ErrRunTimedOut}

var sentinels = map[codes.Code]error{
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.NotFound:           ErrNotFound,
	codes.AlreadyExists:      ErrAlreadyExists,
	codes.Aborted:            ErrConflict,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.Unavailable:        ErrUnavailable,
	codes.DataLoss:           ErrDataLoss,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.FailedPrecondition: ErrFailedPrecondition,
}

// Error is a failed Cairn call (or a failed item of SaveStream or BatchLoad).
// Get it with errors.As:
//
//	var ce *cairn.Error
//	if errors.As(err, &ce) && ce.Reason == "HEAD_MOVED" { ... ce.CurrentHeadID() ... }
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the server's explanation.
	Message string
	// Reason is the stable google.rpc.ErrorInfo reason, e.g. "HEAD_MOVED",
	// "CHECKPOINT_NOT_FOUND", "THREAD_EMPTY" ("" when the status had none).
	Reason string
	// Metadata is the ErrorInfo metadata, e.g. {"current_head_id": "..."}.
	Metadata map[string]string

	status *status.Status
}

// Error formats the code, the reason (when there is one) and the message.
func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("cairn: %s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("cairn: %s: %s", e.Code, e.Message)
}

// Is reports whether target is the sentinel of e's code. A DEADLINE_EXCEEDED
// or CANCELLED error also matches context.DeadlineExceeded or context.Canceled.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	if stop, ok := runStopReasons[e.Reason]; ok && e.Code == codes.Aborted && (target == ErrRunStopped || target == stop) {
		return true
	}
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// GRPCStatus returns the underlying status, so status.FromError and
// status.Code keep working on errors returned by this package.
func (e *Error) GRPCStatus() *status.Status {
	if e.status == nil {
		return status.New(e.Code, e.Message)
	}
	return e.status
}

// CurrentHeadID is the id of the thread's head when a compare-and-set lost
// (ErrConflict, reason HEAD_MOVED); "" otherwise.
func (e *Error) CurrentHeadID() string { return e.Metadata["current_head_id"] }

// RunID names the run of a run error (ErrRunStopped, RUN_NOT_FOUND,
// THREAD_BUSY, RUN_FINISHED); "" otherwise.
func (e *Error) RunID() string { return e.Metadata["run_id"] }

// Field names the offending request field of an ErrInvalidArgument.
func (e *Error) Field() string { return e.Metadata["field"] }

// wrap turns an error returned by a generated stub into an *Error.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			e.Reason, e.Metadata = info.GetReason(), info.GetMetadata()
			break
		}
	}
	return e
}
