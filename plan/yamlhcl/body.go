package yamlhcl

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"gopkg.in/yaml.v3"
)

type body struct {
	file    *File
	node    *yaml.Node
	hidden  map[string]bool
	missing *hcl.Range // where a missing argument is reported; nil: the node
	derived bool       // the remains of PartialContent: duplicates are already reported
}

type entry struct {
	key, value *yaml.Node
}

// describeNode names a node's kind for messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return fmt.Sprintf("the value %q", v)
	}
	return "this"
}

// IsYAML says whether a body comes from a YAML file.
func IsYAML(b hcl.Body) bool {
	_, ok := b.(*body)
	return ok
}

// NotAMapping says whether a YAML body is a list or a value, not a mapping
// of arguments (nor empty): for a labelled block, a key that was meant as
// an argument of the block above it.
func NotAMapping(b hcl.Body) bool {
	yb, ok := b.(*body)
	return ok && !yb.isMapping()
}

func (b *body) MissingItemRange() hcl.Range {
	if b.missing != nil {
		return *b.missing
	}
	start := b.file.Pos(b.node.Line, b.node.Column)
	return hcl.Range{Filename: b.file.Name, Start: start, End: start}
}

// entries lists the mapping's visible keys in order, reporting duplicates.
func (b *body) entries() ([]entry, hcl.Diagnostics) {
	if b.node.Kind != yaml.MappingNode {
		if b.derived || (b.node.Kind == yaml.ScalarNode && b.node.ShortTag() == "!!null") {
			return nil, nil
		}
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid block",
			Detail:   fmt.Sprintf("A mapping (key: value lines) is required here, not %s.", describeNode(b.node)),
			Subject:  b.file.NodeRange(b.node).Ptr(),
		}}
	}
	var out []entry
	var diags hcl.Diagnostics
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(b.node.Content); i += 2 {
		k, v := b.node.Content[i], b.node.Content[i+1]
		if b.hidden[k.Value] {
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			if b.derived {
				continue
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate key",
				Detail:   fmt.Sprintf("The key %q was already given at line %d.", k.Value, prev.Line),
				Subject:  b.file.NodeRange(k).Ptr(),
			})
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{k, v})
	}
	return out, diags
}

func (b *body) Content(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	content, remain, diags := b.PartialContent(schema)
	if !b.isMapping() {
		return content, diags
	}
	rest, d := remain.(*body).entries()
	diags = append(diags, d...)
	var names []string
	for _, a := range schema.Attributes {
		names = append(names, a.Name)
	}
	for _, bl := range schema.Blocks {
		names = append(names, bl.Type)
	}
	for _, e := range rest {
		detail := fmt.Sprintf("An argument named %q is not expected here.", e.key.Value)
		if s := Suggest(e.key.Value, names); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unsupported argument",
			Detail:   detail,
			Subject:  b.file.NodeRange(e.key).Ptr(),
		})
	}
	return content, diags
}

func (b *body) isMapping() bool {
	return b.node.Kind == yaml.MappingNode || (b.node.Kind == yaml.ScalarNode && b.node.ShortTag() == "!!null")
}

func (b *body) PartialContent(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	entries, diags := b.entries()
	byName := map[string]entry{}
	for _, e := range entries {
		byName[e.key.Value] = e
	}
	content := &hcl.BodyContent{Attributes: hcl.Attributes{}, MissingItemRange: b.MissingItemRange()}
	remain := &body{file: b.file, node: b.node, hidden: map[string]bool{}, missing: b.missing, derived: true}
	for k := range b.hidden {
		remain.hidden[k] = true
	}
	if !b.isMapping() {
		// Not a mapping at all: that one problem is enough.
		return content, remain, diags
	}
	for _, as := range schema.Attributes {
		e, ok := byName[as.Name]
		if !ok {
			if as.Required {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Missing required argument",
					Detail:   fmt.Sprintf("The argument %q is required, but no definition was found.", as.Name),
					Subject:  b.MissingItemRange().Ptr(),
				})
			}
			continue
		}
		remain.hidden[as.Name] = true
		expr, d := b.file.Expr(e.value)
		diags = append(diags, d...)
		keyRange := b.file.NodeRange(e.key)
		content.Attributes[as.Name] = &hcl.Attribute{
			Name:      as.Name,
			Expr:      expr,
			Range:     hcl.RangeBetween(keyRange, expr.Range()),
			NameRange: keyRange,
		}
	}
	for _, bs := range schema.Blocks {
		e, ok := byName[bs.Type]
		if !ok {
			continue
		}
		remain.hidden[bs.Type] = true
		blocks, d := b.blocks(bs, e)
		diags = append(diags, d...)
		content.Blocks = append(content.Blocks, blocks...)
	}
	return content, remain, diags
}

// blocks turns `key: {...}` or `key: [{...}, {...}]` into blocks; with labels,
// `key: {label: {...}}`.
func (b *body) blocks(bs hcl.BlockHeaderSchema, e entry) (hcl.Blocks, hcl.Diagnostics) {
	keyRange := b.file.NodeRange(e.key)
	if len(bs.LabelNames) > 0 {
		labelled := &body{file: b.file, node: e.value, hidden: map[string]bool{}}
		items, diags := labelled.entries()
		var out hcl.Blocks
		for _, it := range items {
			lr := b.file.NodeRange(it.key)
			out = append(out, &hcl.Block{
				Type:        bs.Type,
				Labels:      []string{it.key.Value},
				Body:        b.file.blockBody(it.value, lr),
				DefRange:    lr,
				TypeRange:   keyRange,
				LabelRanges: []hcl.Range{lr},
			})
		}
		return out, diags
	}
	var nodes []*yaml.Node
	isList := e.value.Kind == yaml.SequenceNode
	if isList {
		nodes = e.value.Content
	} else {
		nodes = []*yaml.Node{e.value}
	}
	var out hcl.Blocks
	var diags hcl.Diagnostics
	for _, n := range nodes {
		if n.Kind != yaml.MappingNode {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid block",
				Detail:   fmt.Sprintf("%q must be a mapping, or a list of mappings.", bs.Type),
				Subject:  b.file.NodeRange(n).Ptr(),
			})
			continue
		}
		// A list item is its own block: it is defined where it starts.
		defRange := hcl.RangeBetween(keyRange, b.file.openRange(n))
		if isList {
			defRange = b.file.openRange(n)
		}
		out = append(out, &hcl.Block{
			Type:      bs.Type,
			Body:      b.file.blockBody(n, defRange),
			DefRange:  defRange,
			TypeRange: keyRange,
		})
	}
	return out, diags
}

func (b *body) JustAttributes() (hcl.Attributes, hcl.Diagnostics) {
	entries, diags := b.entries()
	attrs := hcl.Attributes{}
	for _, e := range entries {
		expr, d := b.file.Expr(e.value)
		diags = append(diags, d...)
		keyRange := b.file.NodeRange(e.key)
		attrs[e.key.Value] = &hcl.Attribute{
			Name:      e.key.Value,
			Expr:      expr,
			Range:     hcl.RangeBetween(keyRange, expr.Range()),
			NameRange: keyRange,
		}
	}
	return attrs, diags
}
