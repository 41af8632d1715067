package langgraphgo_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"
	"github.com/smallnest/langgraphgo/graph"

	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

// A real crash of a LangGraphGo process: the graph charge -> ship is run by a
// child process (this test binary) that SIGKILLs itself inside ship, after
// charge's checkpoint was saved. charge appends a line to a file per run, so
// runs are counted across processes.

const crashEnv = "CAIRN_LGG_CRASH" // thread id and runs file, for the child

// orderGraph builds charge -> ship over st; ship kills the process when kill.
func orderGraph(t *testing.T, st *langgraphgo.Store, runsFile string, kill bool) *graph.CheckpointableRunnable[map[string]any] {
	t.Helper()
	record := func(node string) error {
		f, err := os.OpenFile(runsFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(node + "\n")
		return err
	}
	g := graph.NewCheckpointableStateGraph[map[string]any]()
	g.SetSchema(graph.NewMapSchema())
	g.AddNode("charge", "charge the card (not idempotent)", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		return map[string]any{"charged": true}, record("charge")
	})
	g.AddNode("ship", "ship the order", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		if kill {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal ends the process
		}
		return map[string]any{"shipped": true}, record("ship")
	})
	g.SetEntryPoint("charge")
	g.AddEdge("charge", "ship")
	g.AddEdge("ship", graph.END)
	g.SetCheckpointConfig(graph.CheckpointConfig{Store: st, AutoSave: true})
	r, err := g.CompileCheckpointable()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCrashChild is the child process's side; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	spec, ok := os.LookupEnv(crashEnv)
	if !ok {
		return
	}
	th, runsFile, _ := strings.Cut(spec, "\n")
	r := orderGraph(t, langgraphgo.NewStore(dial(t)), runsFile, true)
	_, err := r.InvokeWithConfig(context.Background(), map[string]any{"order": "o-1"}, graph.WithThreadID(th))
	t.Fatalf("the child was to be killed inside ship, but Invoke returned (err %v)", err)
}

// crashInShip runs charge -> ship in a child process killed inside ship.
func crashInShip(t *testing.T, th, runsFile string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+th+"\n"+runsFile, "CAIRN_TARGET="+target)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: want death by SIGKILL, got %v\n%s", err, out)
	}
}

func runs(t *testing.T, runsFile string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(runsFile)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, node := range strings.Fields(string(b)) {
		n[node]++
	}
	return n
}

// LangGraphGo's auto-resume (InvokeWithConfig with the thread id) restarts at
// the node of the latest checkpoint, which had finished: charge runs twice.
// This is the framework's rule (its file and memory stores do the same); the
// README documents it, and this test notices if a LangGraphGo upgrade changes it.
func TestAutoResumeAfterCrashRerunsTheFinishedNode(t *testing.T) {
	ctx := context.Background()
	th, runsFile := "lgg-crash-"+uuid.NewString(), filepath.Join(t.TempDir(), "runs")
	crashInShip(t, th, runsFile)

	st := langgraphgo.NewStore(dial(t))
	if latest, err := st.GetLatestByThread(ctx, th); err != nil || latest.NodeName != "charge" {
		t.Fatalf("latest checkpoint after the crash: %+v, %v; want charge's", latest, err)
	}
	out, err := orderGraph(t, st, runsFile, false).InvokeWithConfig(ctx, map[string]any{}, graph.WithThreadID(th))
	if err != nil {
		t.Fatal(err)
	}
	if n := runs(t, runsFile); n["charge"] != 2 || n["ship"] != 1 || out["shipped"] != true {
		t.Fatalf("runs %v, state %v; want charge twice (auto-resume re-runs it), ship once", n, out)
	}
}

// The workaround the README gives: resume explicitly from the node after the
// latest checkpoint's, with that checkpoint's state. charge runs once.
func TestResumeFromNextNodeAfterCrashRunsEachNodeOnce(t *testing.T) {
	ctx := context.Background()
	th, runsFile := "lgg-crash-"+uuid.NewString(), filepath.Join(t.TempDir(), "runs")
	crashInShip(t, th, runsFile)

	st := langgraphgo.NewStore(dial(t))
	latest, err := st.GetLatestByThread(ctx, th)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]string{"charge": "ship"}[latest.NodeName] // the graph's edges
	cfg := graph.WithThreadID(th)
	cfg.ResumeFrom = []string{next}
	out, err := orderGraph(t, st, runsFile, false).InvokeWithConfig(ctx, latest.State.(map[string]any), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := runs(t, runsFile); n["charge"] != 1 || n["ship"] != 1 {
		t.Fatalf("runs %v; want each node once", n)
	}
	if out["charged"] != true || out["shipped"] != true || out["order"] != "o-1" {
		t.Fatalf("final state %v", out)
	}
	if latest, err := st.GetLatestByThread(ctx, th); err != nil || latest.NodeName != "ship" {
		t.Fatalf("latest checkpoint after the resume: %+v, %v; want ship's", latest, err)
	}
}
