package plan

import (
	"context"
	"fmt"
	"hash"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/plan/yamlhcl"
)

// loader carries the state of one Load.
type loader struct {
	ctx    context.Context // stops the load; see LoadContext
	limits limits
	plan   *Plan
	opts   Options

	bytesRead       int64 // of every file read, for MaxFileBytes
	nSteps, nLocals int   // declared so far, for MaxSteps and MaxLocals
	tooBig          bool  // past a limit: decoding stops

	vars      []*Variable
	locals    []*Local
	databases []*Database
	steps     []*Step
	libraries []*Library
	stepIndex map[string]*Step
	hash      hash.Hash // of every file read, libraries included

	exprConfigs *exprConfigs             // see parseExpr
	exprCache   map[string]*compiledExpr // see compileCached
}

// declarations are the blocks of one scope (the plan, or a library).
type declarations struct {
	vars      []*Variable
	locals    []*Local
	databases []*Database
	steps     []*Step
	libraries []*Library
	plans     hcl.Blocks
	states    hcl.Blocks
	seen      map[string]*hcl.Block
}

// declare decodes one top-level block into d. fatal holds the problems that
// would make the checks of steps report false errors (a variable that
// cannot be decoded); with other problems the steps are still checked, so
// that every problem is reported at once.
func (l *loader) declare(b *hcl.Block, d *declarations) (diags, fatal hcl.Diagnostics) {
	if d.seen == nil {
		d.seen = map[string]*hcl.Block{}
	}
	dup := func(key, what string) bool {
		if prev, ok := d.seen[key]; ok {
			detail := fmt.Sprintf("A %s named %q was already declared at %s.", what, b.Labels[0], prev.DefRange)
			if prev.Type != b.Type {
				detail = fmt.Sprintf("A %s named %q was already declared at %s; steps and checks share one set of names.", prev.Type, b.Labels[0], prev.DefRange)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate " + what,
				Detail:   detail,
				Subject:  b.DefRange.Ptr(),
			})
			return true
		}
		d.seen[key] = b
		return false
	}
	switch b.Type {
	case "plan":
		d.plans = append(d.plans, b)
	case "state":
		d.states = append(d.states, b)
	case "variable":
		if !dup("var."+b.Labels[0], "variable") {
			v, vd := decodeVariable(b, l.plan)
			diags = append(diags, vd...)
			fatal = append(fatal, vd...)
			d.vars = append(d.vars, v)
		}
	case "locals":
		attrs, ad := b.Body.JustAttributes()
		diags = append(diags, ad...)
		for _, a := range sortedAttrs(attrs) {
			if tm := l.countDecl("locals", &l.nLocals, l.limits.locals, a.NameRange); tm != nil || l.tooBig {
				return append(diags, tm...), append(fatal, tm...)
			}
			if prev, ok := d.seen["local."+a.Name]; ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Duplicate local",
					Detail:  fmt.Sprintf("A local named %q was already declared at %s.", a.Name, prev.DefRange),
					Subject: a.NameRange.Ptr(),
				})
				continue
			}
			d.seen["local."+a.Name] = &hcl.Block{DefRange: a.NameRange}
			d.locals = append(d.locals, &Local{Name: a.Name, Expr: a.Expr, Range: a.Range})
		}
	case "database":
		if !dup("database."+b.Labels[0], "database") {
			content, cd := b.Body.Content(databaseSchema)
			diags = append(diags, cd...)
			db := &Database{Name: b.Labels[0], DeclRange: b.DefRange}
			if a := content.Attributes["url"]; a != nil {
				db.URL = a.Expr
			} else {
				// Reported; references to it still resolve.
				db.URL = hcl.StaticExpr(cty.UnknownVal(cty.String), b.DefRange)
			}
			d.databases = append(d.databases, db)
		}
	case "step", "check":
		// Steps and checks share one namespace so that addresses read unambiguously.
		if tm := l.countDecl("steps and checks", &l.nSteps, l.limits.steps, b.DefRange); tm != nil || l.tooBig {
			return append(diags, tm...), append(fatal, tm...)
		}
		if !dup("step:"+b.Labels[0], b.Type) {
			st, sd := l.decodeStep(b)
			if d := l.misplacedKey(b, sd); d != nil {
				// Its other problems follow from this one.
				st, sd = nil, hcl.Diagnostics{d}
			}
			diags = append(diags, sd...)
			if st != nil {
				d.steps = append(d.steps, st)
			}
		}
	case "library":
		if !dup("library."+b.Labels[0], "library") {
			lib, ld := decodeLibrary(b)
			diags = append(diags, ld...)
			if lib != nil {
				d.libraries = append(d.libraries, lib)
			}
		}
	}
	return diags, fatal
}

func (l *loader) decode(blocks hcl.Blocks) hcl.Diagnostics {
	var diags, fatal hcl.Diagnostics
	var decls declarations
	for _, b := range blocks {
		if d := l.interrupted(); d != nil {
			return append(diags, d...)
		}
		d, f := l.declare(b, &decls)
		diags = append(diags, d...)
		fatal = append(fatal, f...)
		if l.tooBig {
			return diags
		}
	}
	l.vars, l.locals, l.databases, l.steps, l.libraries = decls.vars, decls.locals, decls.databases, decls.steps, decls.libraries
	var planBlock *hcl.Block
	for _, b := range decls.plans {
		if planBlock != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate plan block",
				Detail:  fmt.Sprintf("A plan has one plan block; the first is at %s.", planBlock.DefRange),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		planBlock = b
	}
	for _, b := range decls.states {
		if l.plan.State != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate state block",
				Detail:  fmt.Sprintf("A plan has one state block; the first is at %s.", l.plan.State.Range),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		content, d := b.Body.Content(stateSchema)
		diags = append(diags, d...)
		if a := content.Attributes["postgres"]; a != nil {
			l.plan.State = &State{Postgres: a.Expr, Range: a.Range}
		}
	}

	p := l.plan
	p.Variables, p.Locals, p.Databases, p.Libraries = l.vars, l.locals, l.databases, l.libraries
	p.root.locals, p.root.databases = l.locals, l.databases

	// Variables first: everything else may read them.
	d := l.resolveVariables()
	diags = append(diags, d...)
	fatal = append(fatal, d...)
	if fatal.HasErrors() {
		return diags
	}
	if planBlock != nil {
		diags = append(diags, l.decodePlanBlock(planBlock)...)
	}
	d = l.orderLocals()
	diags = append(diags, d...)
	fatal = append(fatal, d...)
	if d := l.interrupted(); d != nil {
		return append(diags, d...)
	}
	d, f := l.loadLibraries()
	diags = append(diags, d...)
	fatal = append(fatal, f...)
	l.stepIndex = p.byAddr
	for _, st := range l.steps {
		p.Steps = append(p.Steps, st)
		p.byAddr[st.Addr] = st
	}
	for _, lib := range l.libraries {
		for _, st := range lib.steps {
			p.Steps = append(p.Steps, st)
			p.byAddr[st.Addr] = st
		}
	}
	if fatal.HasErrors() || l.tooBig {
		return diags
	}
	if d := l.interrupted(); d != nil {
		return append(diags, d...)
	}
	for _, lib := range l.libraries {
		for i, dep := range lib.DependsOn {
			if p.byAddr[dep] == nil && !l.isLibrary(dep) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared step",
					Detail:  fmt.Sprintf("library %q depends on %s, which is not declared.%s", lib.Name, dep, l.suggestStep(dep)),
					Subject: lib.dependsOnRanges[i].Ptr(),
				})
			}
		}
	}
	diags = append(diags, l.checkSteps()...)
	if p.Downtime != nil {
		for i, addr := range []string{p.Downtime.From, p.Downtime.To} {
			if p.byAddr[addr] == nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown downtime step",
					Detail:  fmt.Sprintf("The downtime window names %s, which is not declared.%s", addr, l.suggestStep(addr)),
					Subject: p.Downtime.ranges[i].Ptr(),
				})
			}
		}
	}
	if diags.HasErrors() {
		return diags
	}
	if d := l.interrupted(); d != nil {
		return append(diags, d...)
	}
	diags = append(diags, l.buildGraph()...)
	diags = append(diags, l.collectSecrets()...)
	return diags
}

func (l *loader) decodePlanBlock(b *hcl.Block) hcl.Diagnostics {
	p := l.plan
	content, diags := b.Body.Content(planBlockSchema)
	if len(b.Labels) > 0 {
		p.Name = b.Labels[0]
	}
	ctx := l.staticContext()
	if a := content.Attributes["name"]; a != nil {
		diags = append(diags, decodeString(a, ctx, &p.Name)...)
	}
	if a := content.Attributes["description"]; a != nil {
		diags = append(diags, decodeString(a, ctx, &p.Description)...)
	}
	if a := content.Attributes["on_failure"]; a != nil {
		var s string
		diags = append(diags, decodeString(a, ctx, &s)...)
		switch OnFailure(s) {
		case OnFailureRollback, OnFailureStop:
			p.OnFailure = OnFailure(s)
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid on_failure",
				Detail:  fmt.Sprintf("on_failure is %q or %q, not %q.", OnFailureRollback, OnFailureStop, s),
				Subject: a.Expr.Range().Ptr(),
			})
		}
	}
	for _, db := range content.Blocks {
		dc, d := db.Body.Content(downtimeSchema)
		diags = append(diags, d...)
		if dc.Attributes["from"] == nil || dc.Attributes["to"] == nil {
			continue
		}
		from, d1 := stepTraversal(dc.Attributes["from"].Expr)
		to, d2 := stepTraversal(dc.Attributes["to"].Expr)
		diags = append(diags, d1...)
		diags = append(diags, d2...)
		if from != "" && to != "" {
			p.Downtime = &Downtime{From: from, To: to, Range: db.DefRange, ranges: [2]hcl.Range{
				dc.Attributes["from"].Expr.Range(), dc.Attributes["to"].Expr.Range(),
			}}
		}
	}
	return diags
}

// misplacedKey explains a YAML step or check that is a key indented at
// the wrong level: "assert:" under steps: rather than under its step is
// read as a step named assert. It is one when it is named as an argument
// of steps (or of a step type) and is a list or a value, or has problems.
func (l *loader) misplacedKey(b *hcl.Block, diags hcl.Diagnostics) *hcl.Diagnostic {
	if !yamlhcl.IsYAML(b.Body) || !l.stepArgument(b.Labels[0]) {
		return nil
	}
	if !yamlhcl.NotAMapping(b.Body) && !diags.HasErrors() {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Misplaced key",
		Detail:  fmt.Sprintf("%q was read as a %s name: is it indented under its %s?", b.Labels[0], b.Type, b.Type),
		Subject: b.DefRange.Ptr(),
	}
}

// stepArgument says whether name is an argument every step takes or one
// of a step type's.
func (l *loader) stepArgument(name string) bool {
	for _, a := range stepSchema.Attributes {
		if a.Name == name {
			return true
		}
	}
	for _, bl := range stepSchema.Blocks {
		if bl.Type == name {
			return true
		}
	}
	if l.opts.Types == nil {
		return false
	}
	for _, tn := range l.opts.Types.Names() {
		if t, ok := l.opts.Types.Lookup(tn); ok && ArgsShape(t.Args()).Field(name) != nil {
			return true
		}
	}
	return false
}

// decodeStep decodes what every step shares; the type's own arguments stay in
// Body and are checked later against the type's schema (two-phase decoding).
func (l *loader) decodeStep(b *hcl.Block) (*Step, hcl.Diagnostics) {
	st := &Step{Kind: StepKind(b.Type), Name: b.Labels[0], Scope: l.plan.root}
	st.Addr = b.Type + "." + st.Name
	st.DeclRange = b.DefRange
	content, body, diags := b.Body.PartialContent(stepSchema)
	st.Body = body
	if a := content.Attributes["description"]; a != nil {
		diags = append(diags, decodeString(a, &hcl.EvalContext{}, &st.Description)...)
	}
	diags = append(diags, l.decodeUses(&st.Action, content.Attributes["uses"])...)
	if st.Kind == KindCheck && st.Type != nil && !st.Type.ReadOnly() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Step type not allowed in a check",
			Detail:  fmt.Sprintf("A check is read-only, and %q can change data. Use a step, or a read-only type (%s).", st.Uses, l.readOnlyTypes()),
			Subject: content.Attributes["uses"].Expr.Range().Ptr(),
		})
	}
	if a := content.Attributes["depends_on"]; a != nil {
		deps, ranges, d := dependsOn(a)
		diags = append(diags, d...)
		st.DependsOn = deps
		st.dependsOnRanges = ranges
	}
	if a := content.Attributes["when"]; a != nil {
		st.When = a.Expr
	}
	if a := content.Attributes["timeout"]; a != nil {
		st.pendingTimeout = a
	}
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "retry":
			st.pendingRetry = append(st.pendingRetry, blk)
		case "assert":
			st.pendingAsserts = append(st.pendingAsserts, blk)
		case "rollback":
			if st.Kind == KindCheck {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Rollback in a check",
					Detail:  "A check is read-only, so it has nothing to roll back.",
					Subject: blk.DefRange.Ptr(),
				})
				continue
			}
			if st.Rollback != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate rollback block", Detail: "A step has at most one rollback.", Subject: blk.DefRange.Ptr()})
				continue
			}
			rb, d := l.decodeRollback(blk)
			diags = append(diags, d...)
			st.Rollback = rb
		}
	}
	return st, diags
}

func (l *loader) decodeRollback(b *hcl.Block) (*Action, hcl.Diagnostics) {
	a := &Action{DeclRange: b.DefRange}
	content, body, diags := b.Body.PartialContent(rollbackSchema)
	a.Body = body
	diags = append(diags, l.decodeUses(a, content.Attributes["uses"])...)
	a.pendingTimeout = content.Attributes["timeout"]
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "retry":
			a.pendingRetry = append(a.pendingRetry, blk)
		case "assert":
			a.pendingAsserts = append(a.pendingAsserts, blk)
		}
	}
	return a, diags
}

func (l *loader) decodeUses(a *Action, attr *hcl.Attribute) hcl.Diagnostics {
	if attr == nil {
		return nil
	}
	diags := decodeString(attr, &hcl.EvalContext{}, &a.Uses)
	if diags.HasErrors() {
		return diags
	}
	t, ok := l.opts.Types.Lookup(a.Uses)
	if !ok {
		detail := fmt.Sprintf("There is no step type %q.", a.Uses)
		if s := yamlhcl.Suggest(a.Uses, l.opts.Types.Names()); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		detail += fmt.Sprintf(" The step types are: %s.", joinNames(l.opts.Types.Names()))
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Unknown step type", Detail: detail,
			Subject: attr.Expr.Range().Ptr(),
		})
	}
	a.Type = t
	return diags
}

func (l *loader) readOnlyTypes() string {
	var names []string
	for _, n := range l.opts.Types.Names() {
		if t, _ := l.opts.Types.Lookup(n); t.ReadOnly() {
			names = append(names, n)
		}
	}
	return joinNames(names)
}

func joinNames(names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	out := ""
	for i, n := range sorted {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
