//! The survey stage: an open survey's current question is answered (the
//! next one asked, or the survey completed and scored), re-prompted, or
//! given up on. Crisis language pre-empts it, and so does a compliance
//! keyword (before this stage runs).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::builder::Builder;
use super::verdict::SurveyVerdict;
use crate::domain::message::Kind;
use crate::pipeline::answer;
use crate::rules::{Question, Survey};
use crate::store::traits::reply::{AnswerRecord, OpenSurvey, SurveyClose, SurveyUpdate};

/// A valid answer, for the alerts that read it.
pub(super) struct Answered<'r> {
    pub(super) def: &'r Survey,
    /// The run's survey id.
    pub(super) survey: &'r str,
    pub(super) question: String,
    pub(super) value: serde_json::Value,
    /// The run's answers, this one included.
    pub(super) answers: BTreeMap<String, serde_json::Value>,
    pub(super) score: Option<serde_json::Value>,
}

/// What the stage decided about the open survey.
pub(super) struct SurveyStep<'r> {
    pub(super) verdict: SurveyVerdict,
    pub(super) update: Option<SurveyUpdate>,
    pub(super) answered: Option<Answered<'r>>,
}

impl SurveyStep<'_> {
    fn only(verdict: SurveyVerdict) -> Self {
        SurveyStep {
            verdict,
            update: None,
            answered: None,
        }
    }
}

/// The member's open survey, if any, read against this text.
pub(super) fn stage<'r>(
    b: &mut Builder<'r>,
    crisis_matched: bool,
    opted_out: bool,
) -> SurveyStep<'r> {
    let input = b.input;
    let Some(open) = &input.facts.survey else {
        return SurveyStep::only(SurveyVerdict::none());
    };
    let mut verdict = SurveyVerdict {
        survey: Some(open.run.survey.clone()),
        ..SurveyVerdict::none()
    };
    if crisis_matched {
        verdict.state = "preempted";
        verdict.reason =
            Some("crisis language is never a survey answer; the question stays open".into());
        return SurveyStep::only(verdict);
    }
    let Some(def) = input.rules.surveys.get(&open.run.survey) else {
        verdict.state = "not_in_rules";
        verdict.reason = Some(format!(
            "survey `{}` is no longer in the rules; the text is read as ordinary text",
            open.run.survey
        ));
        return SurveyStep::only(verdict);
    };
    let index = open.run.question as usize;
    let Some(question) = def.questions.get(index) else {
        verdict.state = "not_in_rules";
        verdict.reason = Some(format!(
            "survey `{}` has no question {} any more; the text is read as ordinary text",
            def.id,
            index + 1
        ));
        return SurveyStep::only(verdict);
    };
    verdict.question = Some(question.id.clone());
    let asking = Asking {
        def,
        open,
        question,
        opted_out,
    };
    match answer::parse_answer(&question.expect, input.text) {
        Ok(a) => asking.answered(b, verdict, a.to_json()),
        Err(why) => {
            verdict.reason = Some(why.0);
            asking.not_answered(b, verdict)
        }
    }
}

/// The question the text is read against.
struct Asking<'r> {
    def: &'r Survey,
    open: &'r OpenSurvey,
    question: &'r Question,
    opted_out: bool,
}

impl<'r> Asking<'r> {
    /// When the run's questions stop being asked.
    fn expires(&self) -> Option<DateTime<Utc>> {
        self.open.run.expires_at
    }

    /// A valid answer: stored; the next question asked, or the survey
    /// completed, scored and thanked.
    fn answered(
        &self,
        b: &mut Builder<'_>,
        mut verdict: SurveyVerdict,
        value: serde_json::Value,
    ) -> SurveyStep<'r> {
        let (def, open) = (self.def, self.open);
        verdict.answer = Some(value.clone());
        let mut answers = open.answers.clone();
        answers.insert(self.question.id.clone(), value.clone());
        let next = open.run.question as usize + 1;
        let record = AnswerRecord {
            question: self.question.id.clone(),
            position: open.run.question,
            value: value.clone(),
        };
        let mut update = SurveyUpdate {
            run_id: open.run.id,
            answer: Some(record),
            question: open.run.question,
            reprompts: 0,
            close: None,
            score: None,
            ask_key: None,
        };
        if let Some(nq) = def.questions.get(next) {
            verdict.state = "answered";
            verdict.next_question = Some(nq.id.clone());
            update.question = next as u32;
            if !self.opted_out {
                let purpose = format!("survey:{}:{next}", def.id);
                update.ask_key =
                    b.reply(&purpose, Kind::Reply, Some(&nq.ask), None, self.expires());
            }
        } else {
            verdict.state = "completed";
            verdict.score = answer::score(def, &answers).map(|s| s.to_json());
            update.close = Some(SurveyClose::Completed);
            update.score = verdict.score.clone();
            if !self.opted_out {
                let purpose = format!("survey:{}:thanks", def.id);
                b.reply(&purpose, Kind::Reply, def.thanks.as_deref(), None, None);
            }
        }
        let score = verdict.score.clone();
        SurveyStep {
            verdict,
            update: Some(update),
            answered: Some(Answered {
                def,
                survey: &open.run.survey,
                question: self.question.id.clone(),
                value,
                answers,
                score,
            }),
        }
    }

    /// Not an answer: asked again while re-prompts are left, else given
    /// up on.
    fn not_answered(&self, b: &mut Builder<'_>, mut verdict: SurveyVerdict) -> SurveyStep<'r> {
        let (def, open) = (self.def, self.open);
        let mut update = SurveyUpdate {
            run_id: open.run.id,
            answer: None,
            question: open.run.question,
            reprompts: open.reprompts,
            close: None,
            score: None,
            ask_key: None,
        };
        if open.reprompts < def.max_reprompts {
            verdict.state = "reprompted";
            update.reprompts = open.reprompts + 1;
            let purpose = format!(
                "survey:{}:{}:reprompt:{}",
                def.id,
                open.run.question,
                open.reprompts + 1
            );
            let template = def.reprompt.as_deref().unwrap_or(&self.question.ask);
            if !self.opted_out {
                update.ask_key =
                    b.reply(&purpose, Kind::Reply, Some(template), None, self.expires());
            }
        } else {
            verdict.state = "gave_up";
            update.close = Some(SurveyClose::GaveUp);
        }
        SurveyStep {
            verdict,
            update: Some(update),
            answered: None,
        }
    }
}
