package plan

import "github.com/hashicorp/hcl/v2"

var planBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "description"}, {Name: "on_failure"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "downtime"}},
}

var downtimeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "from", Required: true}, {Name: "to", Required: true}},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "condition", Required: true}, {Name: "error_message", Required: true}},
}

var databaseSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "description"}},
}

var stepSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "uses", Required: true}, {Name: "depends_on"}, {Name: "when"},
		{Name: "timeout"}, {Name: "description"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "retry"}, {Type: "assert"}, {Type: "rollback"}},
}

var rollbackSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "uses", Required: true}, {Name: "timeout"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "retry"}, {Type: "assert"}},
}

var retrySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "attempts"}, {Name: "backoff"}, {Name: "max_backoff"}},
}

var assertSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "that", Required: true}, {Name: "message"}, {Name: "severity"}},
}

var librarySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "source", Required: true}, {Name: "inputs"}, {Name: "depends_on"}},
}

var stateSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "postgres", Required: true}},
}
