// Package plan turns plan files (HCL or YAML) into a validated model and a
// DAG, with hcl.Diagnostics that point at the source. It runs nothing and
// imports no database driver.
package plan

import (
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/planrun/planrun/internal/dag"
)

// OnFailure says what a failed run does.
type OnFailure string

// OnFailure values.
const (
	OnFailureRollback OnFailure = "rollback"
	OnFailureStop     OnFailure = "stop"
)

// Plan is a loaded, validated plan.
type Plan struct {
	Name        string
	Description string
	OnFailure   OnFailure
	Downtime    *Downtime
	State       *State

	Path  string               // the file or directory given to Load
	Dir   string               // path.plan
	Files map[string]*hcl.File // every source file, for diagnostic snippets
	Hash  string               // sha256 of the plan's source files

	Variables []*Variable
	Locals    []*Local
	Databases []*Database
	Steps     []*Step // steps and checks in declaration order, then library checks
	Libraries []*Library

	Graph *dag.Graph

	root    *Scope
	byAddr  map[string]*Step
	secrets []string
	// secretsOf lists a connection string's secrets (see ConnSecrets).
	secretsOf func(conn string) []string
	funcs     map[string]function.Function
	environ   []string
	pathObj   cty.Value
}

// Downtime is the window the report measures: from the start of one step to
// the end of another.
type Downtime struct {
	From, To string // step addresses
	Range    hcl.Range

	ranges [2]hcl.Range // of from and to
}

// State says where the journal lives when not in .planrun/ beside the plan.
type State struct {
	Postgres hcl.Expression // evaluates to a connection URL
	Range    hcl.Range
}

// Variable is a declared input.
type Variable struct {
	Name        string
	Description string
	Type        cty.Type
	Default     cty.Value // cty.NilVal when there is none
	Sensitive   bool
	Validations []*Validation
	DeclRange   hcl.Range

	badDefault bool // its default is invalid (and reported)
}

// Validation is a variable's condition.
type Validation struct {
	Condition    hcl.Expression
	ErrorMessage string
	Range        hcl.Range
}

// Local is a named expression.
type Local struct {
	Name  string
	Expr  hcl.Expression
	Range hcl.Range
}

// Database is a named connection.
type Database struct {
	Name      string
	URL       hcl.Expression
	DeclRange hcl.Range
}

// StepKind distinguishes steps from checks.
type StepKind string

// Step kinds.
const (
	KindStep  StepKind = "step"
	KindCheck StepKind = "check"
)

// Action is something runnable: a step's work, a rollback hook, a probe.
type Action struct {
	Uses      string
	Type      StepType
	Body      hcl.Body // the type's own arguments
	Timeout   time.Duration
	Retry     Retry
	Asserts   []*Assertion
	Args      []Arg // arguments as known before the run (for `planrun plan`)
	DeclRange hcl.Range

	refs []string // step and check addresses its expressions read (evaluation context)

	// decoded once variables and locals are known
	pendingTimeout *hcl.Attribute
	pendingRetry   hcl.Blocks
	pendingAsserts hcl.Blocks
}

// Retry configures attempts with exponential backoff.
type Retry struct {
	Attempts   int // total attempts; at least 1
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Arg is an argument's value as known before the run: possibly unknown
// (known after apply) or marked sensitive.
type Arg struct {
	Name  string
	Value cty.Value
	Ref   string // "database.x" when the argument names a database
}

// Step is a step or a check.
type Step struct {
	Action
	Kind        StepKind
	Name        string
	Addr        string // step.dump, check.same_data, library.pg.check.rows
	Description string
	DependsOn   []string
	When        hcl.Expression // nil: always runs
	WhenPreview cty.Value      // when's value as known before the run (may be unknown)
	Rollback    *Action
	Deps        []string // every dependency, explicit and implicit, sorted
	Scope       *Scope

	dependsOnRanges []hcl.Range // of each DependsOn entry
	reads           []string    // every step address its when, arguments and assertions read
	libraryDeps     []string    // a library's step: the library block's depends_on, in the plan's scope
}

// Severity of an assertion.
type Severity string

// Severities.
const (
	SeverityError Severity = "error"
	SeverityWarn  Severity = "warn"
)

// Assertion is an expr-lang condition on a step's output.
type Assertion struct {
	That     string
	Message  string
	Severity Severity
	Range    hcl.Range

	Program *vm.Program
	Reads   []Read    // what the condition reads, for failure reports
	Msg     []MsgPart // the message, with {{ expr }} parts compiled
}

// Read is one value an assertion reads, with a program that fetches it.
type Read struct {
	Expr    string
	Program *vm.Program
}

// MsgPart is literal text or a compiled {{ expr }}.
type MsgPart struct {
	Text    string
	Program *vm.Program
}

// Library is a reusable set of checks bound to inputs.
type Library struct {
	Name      string
	Source    string
	Inputs    hcl.Expression
	DependsOn []string
	DeclRange hcl.Range
	Dir       string

	Variables []*Variable // the library's own variables, bound to Inputs

	steps           []*Step // its checks (and steps), addressed library.NAME.check.X
	scope           *Scope
	sourceRange     hcl.Range
	dependsOnRanges []hcl.Range
}

// Scope is a namespace of variables and locals: the plan's own, or one per library.
type Scope struct {
	Prefix    string // "" for the plan, "library.NAME." for a library
	vars      map[string]cty.Value
	sensitive map[string]bool
	locals    []*Local
	databases []*Database
	plan      *Plan

	markedVars   map[string]cty.Value // library inputs that carry sensitive parts, marks kept
	localOrder   []*Local             // locals after the locals they read
	localIndex   map[string]*Local    // locals by name; see local
	localReads   map[string][]string  // local name -> the declared locals it reads
	localRefs    map[string][]string  // local name -> step addresses it reads
	databaseRefs map[string][]string  // database name -> step addresses it reads
	dynamicRefs  []string             // every step address read by a local or database
	validateCtx  *hcl.EvalContext
}

// local returns the scope's local of that name, or nil.
func (s *Scope) local(name string) *Local {
	if len(s.localIndex) != len(s.locals) {
		s.localIndex = make(map[string]*Local, len(s.locals))
		for _, lo := range s.locals {
			s.localIndex[lo.Name] = lo
		}
	}
	return s.localIndex[name]
}

// Step returns the step or check with the given address.
func (p *Plan) Step(addr string) *Step { return p.byAddr[addr] }

// Secrets returns the strings that must never be shown: sensitive variable
// values and database passwords known at load time.
func (p *Plan) Secrets() []string { return append([]string(nil), p.secrets...) }

// AddSecrets adds secrets the plan does not hold but whatever shows it must
// hide (the password of --state-url). Not safe during a run: add them
// before.
func (p *Plan) AddSecrets(secrets ...string) { p.secrets = uniqueSorted(append(p.secrets, secrets...)) }

// VarValues returns the resolved root variables (sensitive ones included, unmarked).
func (p *Plan) VarValues() map[string]cty.Value { return p.root.vars }

// IsSensitive reports whether the root variable is sensitive.
func (p *Plan) IsSensitive(name string) bool { return p.root.sensitive[name] }
