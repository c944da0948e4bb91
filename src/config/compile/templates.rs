//! `templates:` and every other template body (survey questions,
//! re-prompts, thanks): compiling them into one environment.

use std::path::Path;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::diag::Place;
use crate::engine::template::Templates;

impl Compiler<'_> {
    pub(super) fn add_template(
        &mut self,
        env: &mut minijinja::Environment<'static>,
        name: &str,
        body: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> bool {
        if body.value.trim().is_empty() {
            self.diags.error(
                Place::of(path, body),
                Some(owner),
                format!("{owner} has an empty body"),
            );
            return false;
        }
        match Templates::add(env, name, &body.value) {
            Ok(()) => true,
            Err(e) => {
                let place = match e.line {
                    Some(line) => self.place_in_value(path, body, line, e.column.unwrap_or(1)),
                    None => Place::of(path, body),
                };
                self.diags
                    .error(place, Some(owner), format!("{owner}: {}", e.message));
                false
            }
        }
    }
}

pub(super) fn owner_of_template(name: &str) -> String {
    match name.split('/').collect::<Vec<_>>()[..] {
        ["survey", survey, "reprompt"] => format!("reprompt of survey `{survey}`"),
        ["survey", survey, "thanks"] => format!("thanks of survey `{survey}`"),
        ["survey", survey, question] => format!("question `{question}` of survey `{survey}`"),
        _ => format!("template `{name}`"),
    }
}
