//! The languages the repository map reads symbols from: which file extensions they own, their
//! tree-sitter grammars, and the small tag queries that find top-level definitions and the
//! names a file refers to.
//!
//! Query conventions (those of tree-sitter's `tags.scm`): `@name` is the symbol's name,
//! `@definition.<kind>` the whole definition, `@container` the type or class a method belongs
//! to, `@reference` a use of a name. When two definition patterns match the same name on the
//! same line (an exported arrow function is also a `const`), the earlier pattern wins, so the
//! specific patterns come first.

use serde::{Deserialize, Serialize};

/// A language whose symbols the map extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    /// TypeScript with JSX (`.tsx`): its own grammar.
    Tsx,
    Go,
}

impl Lang {
    /// Every language, in a fixed order (the order of per-language tables).
    pub const ALL: [Lang; 6] = [
        Lang::Rust,
        Lang::Python,
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Tsx,
        Lang::Go,
    ];

    /// The language owning a file name, by its extension.
    pub fn from_path(path: &str) -> Option<Lang> {
        let ext = path.rsplit_once('.')?.1;
        Some(match ext {
            "rs" => Lang::Rust,
            "py" | "pyi" => Lang::Python,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            _ => return None,
        })
    }

    /// Position in [`Lang::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn grammar(self) -> tree_sitter::Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    /// The definitions query.
    pub(crate) fn definitions(self) -> String {
        match self {
            Lang::Rust => RUST_DEFINITIONS.to_string(),
            Lang::Python => PYTHON_DEFINITIONS.to_string(),
            Lang::JavaScript => top_level_js(JS_DEFINITIONS),
            // `namespace X {}` at the top parses as an expression statement.
            Lang::TypeScript | Lang::Tsx => {
                top_level_js(TS_DEFINITIONS)
                    + "(program (expression_statement (internal_module name: (_) @name) @definition.module))\n"
            }
            Lang::Go => GO_DEFINITIONS.to_string(),
        }
    }

    /// The references query.
    pub(crate) fn references(self) -> &'static str {
        match self {
            Lang::Rust => RUST_REFERENCES,
            Lang::Python => PYTHON_REFERENCES,
            Lang::JavaScript => JS_REFERENCES,
            Lang::TypeScript | Lang::Tsx => TS_REFERENCES,
            Lang::Go => GO_REFERENCES,
        }
    }

    /// The separator between a method's container and its name when rendered.
    pub(crate) fn member_separator(self) -> &'static str {
        match self {
            Lang::Rust => "::",
            _ => ".",
        }
    }
}

/// JavaScript and TypeScript declarations count at the top of the program and inside an
/// `export` statement there: each pattern is emitted for both places.
fn top_level_js(patterns: &[&str]) -> String {
    let mut query = String::new();
    for pattern in patterns {
        query.push_str(&format!("(program {pattern})\n"));
        query.push_str(&format!(
            "(program (export_statement declaration: {pattern}))\n"
        ));
    }
    query
}

const RUST_DEFINITIONS: &str = r#"
(source_file (impl_item type: (_) @container
  body: (declaration_list (function_item name: (identifier) @name) @definition.method)))
(source_file (trait_item name: (type_identifier) @container
  body: (declaration_list [(function_item name: (identifier) @name)
                           (function_signature_item name: (identifier) @name)] @definition.method)))
(source_file (function_item name: (identifier) @name) @definition.function)
(source_file (struct_item name: (type_identifier) @name) @definition.struct)
(source_file (union_item name: (type_identifier) @name) @definition.struct)
(source_file (enum_item name: (type_identifier) @name) @definition.enum)
(source_file (trait_item name: (type_identifier) @name) @definition.trait)
(source_file (type_item name: (type_identifier) @name) @definition.type)
(source_file (const_item name: (identifier) @name) @definition.const)
(source_file (static_item name: (identifier) @name) @definition.const)
(source_file (mod_item name: (identifier) @name) @definition.module)
(source_file (macro_definition name: (identifier) @name) @definition.macro)
"#;

const RUST_REFERENCES: &str = r#"
(call_expression function: (identifier) @reference)
(call_expression function: (field_expression field: (field_identifier) @reference))
(macro_invocation macro: (identifier) @reference)
(scoped_identifier name: (identifier) @reference)
(use_list (identifier) @reference)
(use_declaration argument: (identifier) @reference)
(type_identifier) @reference
"#;

const PYTHON_DEFINITIONS: &str = r#"
(module (class_definition name: (identifier) @container
  body: (block (function_definition name: (identifier) @name) @definition.method)))
(module (class_definition name: (identifier) @container
  body: (block (decorated_definition
    definition: (function_definition name: (identifier) @name)) @definition.method)))
(module (decorated_definition definition: (class_definition name: (identifier) @container
  body: (block (function_definition name: (identifier) @name) @definition.method))))
(module (function_definition name: (identifier) @name) @definition.function)
(module (decorated_definition
  definition: (function_definition name: (identifier) @name)) @definition.function)
(module (class_definition name: (identifier) @name) @definition.class)
(module (decorated_definition
  definition: (class_definition name: (identifier) @name)) @definition.class)
(module (expression_statement (assignment left: (identifier) @name) @definition.const)
  (#match? @name "^[A-Z][A-Za-z0-9_]*$"))
"#;

const PYTHON_REFERENCES: &str = r#"
(call function: (identifier) @reference)
(call function: (attribute attribute: (identifier) @reference))
(import_from_statement name: (dotted_name (identifier) @reference))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @reference)))
(argument_list (identifier) @reference)
(type (identifier) @reference)
(attribute attribute: (identifier) @reference)
"#;

const JS_DEFINITIONS: &[&str] = &[
    r#"(class_declaration name: (identifier) @container
  body: (class_body (method_definition name: (property_identifier) @name) @definition.method))"#,
    "(function_declaration name: (identifier) @name) @definition.function",
    "(generator_function_declaration name: (identifier) @name) @definition.function",
    "(class_declaration name: (identifier) @name) @definition.class",
    r#"(lexical_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function)"#,
    "(lexical_declaration (variable_declarator name: (identifier) @name) @definition.const)",
];

const JS_REFERENCES: &str = r#"
(call_expression function: (identifier) @reference)
(call_expression function: (member_expression property: (property_identifier) @reference))
(new_expression constructor: (identifier) @reference)
(import_specifier name: (identifier) @reference)
(class_heritage (identifier) @reference)
"#;

const TS_DEFINITIONS: &[&str] = &[
    r#"(class_declaration name: (type_identifier) @container
  body: (class_body (method_definition name: (property_identifier) @name) @definition.method))"#,
    r#"(abstract_class_declaration name: (type_identifier) @container
  body: (class_body (method_definition name: (property_identifier) @name) @definition.method))"#,
    r#"(interface_declaration name: (type_identifier) @container
  body: (interface_body (method_signature name: (property_identifier) @name) @definition.method))"#,
    "(function_declaration name: (identifier) @name) @definition.function",
    "(generator_function_declaration name: (identifier) @name) @definition.function",
    "(function_signature name: (identifier) @name) @definition.function",
    "(class_declaration name: (type_identifier) @name) @definition.class",
    "(abstract_class_declaration name: (type_identifier) @name) @definition.class",
    "(interface_declaration name: (type_identifier) @name) @definition.interface",
    "(type_alias_declaration name: (type_identifier) @name) @definition.type",
    "(enum_declaration name: (identifier) @name) @definition.enum",
    "(internal_module name: (_) @name) @definition.module",
    r#"(lexical_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function)"#,
    "(lexical_declaration (variable_declarator name: (identifier) @name) @definition.const)",
];

const TS_REFERENCES: &str = r#"
(call_expression function: (identifier) @reference)
(call_expression function: (member_expression property: (property_identifier) @reference))
(new_expression constructor: (identifier) @reference)
(import_specifier name: (identifier) @reference)
(type_identifier) @reference
(extends_clause value: (identifier) @reference)
"#;

const GO_DEFINITIONS: &str = r#"
(source_file (method_declaration
  receiver: (parameter_list (parameter_declaration
    type: [(type_identifier) @container (pointer_type (type_identifier) @container)]))
  name: (field_identifier) @name) @definition.method)
(source_file (method_declaration name: (field_identifier) @name) @definition.method)
(source_file (function_declaration name: (identifier) @name) @definition.function)
(source_file (type_declaration (type_spec name: (type_identifier) @name
  type: (struct_type)) @definition.struct))
(source_file (type_declaration (type_spec name: (type_identifier) @name
  type: (interface_type)) @definition.interface))
(source_file (type_declaration (type_spec name: (type_identifier) @name) @definition.type))
(source_file (type_declaration (type_alias name: (type_identifier) @name) @definition.type))
(source_file (const_declaration (const_spec name: (identifier) @name) @definition.const))
(source_file (var_declaration (var_spec name: (identifier) @name) @definition.const))
"#;

const GO_REFERENCES: &str = r#"
(call_expression function: (identifier) @reference)
(call_expression function: (selector_expression field: (field_identifier) @reference))
(selector_expression field: (field_identifier) @reference)
(type_identifier) @reference
(composite_literal type: (type_identifier) @reference)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_compiles_against_its_grammar() {
        for lang in Lang::ALL {
            let grammar = lang.grammar();
            tree_sitter::Query::new(&grammar, &lang.definitions())
                .unwrap_or_else(|e| panic!("{lang:?} definitions: {e}"));
            tree_sitter::Query::new(&grammar, lang.references())
                .unwrap_or_else(|e| panic!("{lang:?} references: {e}"));
        }
    }

    #[test]
    fn extensions_choose_the_language() {
        assert_eq!(Lang::from_path("src/main.rs"), Some(Lang::Rust));
        assert_eq!(Lang::from_path("a/b.tsx"), Some(Lang::Tsx));
        assert_eq!(Lang::from_path("web/app.mjs"), Some(Lang::JavaScript));
        assert_eq!(Lang::from_path("README.md"), None);
        assert_eq!(Lang::from_path("Makefile"), None);
    }
}
