//! The statistics of answer-file QC, computed once for the terminal and the HTML report.

use std::collections::HashMap;

use assay_quality::aggregation::{
    dawid_skene, majority_vote, DawidSkene, DawidSkeneOptions, TiePolicy, Vote,
};
use assay_quality::agreement::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, percent_agreement, ContingencyTable,
    KappaWeights, Level, RatingMatrix,
};
use assay_quality::annotators::{
    score_annotators, AnnotatorInput, AnnotatorOptions, AnnotatorReport, AnnotatorScore,
};
use assay_quality::audit::{
    audit_decision, wilson_interval, zero_defect_sample_size, AuditDecision, Interval,
};
use assay_quality::metrics::{
    accuracy_at_coverage, expected_calibration_error, reliability_bins, ReliabilityBin,
    DEFAULT_ECE_BINS,
};

use super::{Data, Settings};
use crate::{level_name, pct, Error, Result, RELIABILITY_BINS};

/// With at most this many annotators every pair's Cohen's kappa is kept ([`Pairwise::Matrix`]); above it, a
/// summary.
pub const PAIRWISE_TABLE_MAX: usize = 8;

/// One pair of annotators: `None` when they share no item, else (kappa where defined, shared items).
pub type PairCell = Option<(Option<f64>, usize)>;

/// Cohen's kappa between annotators.
#[derive(Debug, Clone)]
pub enum Pairwise {
    /// Few annotators: every pair, `(kappa, shared items)`; kappa is `None` where undefined.
    Matrix(Vec<Vec<PairCell>>),
    /// Many annotators: a summary over pairs sharing at least `min_shared` items.
    Summary {
        min_shared: usize,
        pairs: usize,
        mean: f64,
        median: f64,
        /// (kappa, annotator a, annotator b, shared items) of the lowest pair.
        min: (f64, usize, usize, usize),
        /// The same of the highest pair.
        max: (f64, usize, usize, usize),
    },
    /// No pair shares enough items.
    None { min_shared: usize },
}

/// A calibration curve of one label source on gold items.
#[derive(Debug, Clone)]
pub struct Confidence {
    /// "Dawid-Skene" or "majority vote".
    pub name: &'static str,
    /// [`RELIABILITY_BINS`] equal-width bins.
    pub bins: Vec<ReliabilityBin>,
    /// Expected calibration error over [`DEFAULT_ECE_BINS`] bins.
    pub ece: f64,
    /// (coverage, accuracy among the most confident `coverage` share), at coverage 0.05, 0.10, ..., 1.
    pub coverage: Vec<(f64, f64)>,
    /// Gold items with a label from this source.
    pub items: usize,
}

/// The audit of the majority labels on gold items.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Majority labels that differ from gold.
    pub errors: u64,
    /// Gold items majority vote labels.
    pub sampled: u64,
    /// Two-sided 95% Wilson interval of the error rate.
    pub interval: Interval,
    /// Pass or fail against the target error.
    pub decision: AuditDecision,
}

/// `right / total`, shown as "685/735 = 93.2%".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share {
    /// Items counted right.
    pub right: usize,
    /// Items counted.
    pub total: usize,
}

impl Share {
    /// `right / total`; NaN when nothing was counted.
    pub fn rate(self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            self.right as f64 / self.total as f64
        }
    }

    /// "685/735 = 93.2%", or "n/a" when nothing was counted.
    pub fn show(self) -> String {
        if self.total == 0 {
            "n/a".into()
        } else {
            format!("{}/{} = {}", self.right, self.total, pct(self.rate()))
        }
    }
}

/// Majority vote and Dawid-Skene against gold.
#[derive(Debug, Clone, Default)]
pub struct GoldComparison {
    /// Items with gold and answers.
    pub gold_items: usize,
    /// Majority vote on gold items it labels (ties left out).
    pub mv_untied: Share,
    /// Majority vote on all gold items, ties counted wrong.
    pub mv_all: Share,
    /// Gold items where majority vote tied.
    pub ties: usize,
    /// Dawid-Skene on all gold items.
    pub ds: Share,
}

/// Every figure of answer-file QC.
#[derive(Debug, Clone)]
pub struct Qc {
    /// Percent agreement, or why it is undefined.
    pub percent: Result<f64, String>,
    /// Fleiss' kappa, or why it is undefined.
    pub fleiss: Result<f64, String>,
    /// Krippendorff's alpha at the settings' level, or why it is undefined.
    pub alpha: Result<f64, String>,
    /// Cohen's kappa between annotators.
    pub pairwise: Pairwise,
    /// Majority vote per item (ties reported, not broken).
    pub votes: Vec<Vote>,
    /// Items with answers where majority vote tied.
    pub ties: usize,
    /// The Dawid-Skene fit.
    pub ds: DawidSkene,
    /// Items where majority vote gives a label, and how many of those Dawid-Skene labels the same.
    pub mv_ds: Share,
    /// Against gold, when gold was given.
    pub gold: Option<GoldComparison>,
    /// Per-annotator scores and flags.
    pub annotators: AnnotatorReport,
    /// The audit of the majority labels, when gold items have majority labels.
    pub audit: Option<Audit>,
    /// Items to check by hand, all correct, to show the error rate under the target at the confidence.
    pub zero_defect: u64,
    /// Calibration of Dawid-Skene and majority vote on gold items.
    pub confidence: Vec<Confidence>,
}

/// Runs every statistic over the answers.
pub fn compute(settings: &Settings, d: &Data) -> Result<Qc> {
    if settings.level != Level::Nominal && d.values.is_none() {
        return Err(Error::NonNumericLabels {
            level: settings.level,
        });
    }
    let options = AnnotatorOptions::default();
    let (percent, fleiss, alpha, pairwise) = agreement(settings.level, d, &options)?;
    let (n_items, n_annotators, k) = (d.items.len(), d.annotators.len(), d.labels.len());
    let votes = majority_vote(&d.answers, n_items, k, TiePolicy::Report)?;
    let ties = votes
        .iter()
        .filter(|v| v.label.is_none() && v.answers > 0)
        .count();
    let ds = dawid_skene(
        &d.answers,
        n_items,
        n_annotators,
        k,
        &DawidSkeneOptions::default(),
    )?;
    let mut mv_ds = Share::default();
    for (v, l) in votes.iter().zip(&ds.labels) {
        if let Some(v) = v.label {
            mv_ds.total += 1;
            mv_ds.right += usize::from(*l == Some(v));
        }
    }
    let input = AnnotatorInput {
        gold: &d.gold,
        seconds: &d.seconds,
        dawid_skene: Some(&ds),
        ..AnnotatorInput::new(&d.answers, n_items, n_annotators, k)
    };
    let annotators = score_annotators(&input, &options)?;
    let zero_defect = zero_defect_sample_size(settings.confidence, settings.target_error)?;
    let (gold, confidence, audit) = if d.gold.is_empty() {
        (None, Vec::new(), None)
    } else {
        let (cmp, confidence) = against_gold(d, &votes, &ds)?;
        let audit = audit(settings, &cmp)?;
        (Some(cmp), confidence, audit)
    };
    Ok(Qc {
        percent,
        fleiss,
        alpha,
        pairwise,
        votes,
        ties,
        ds,
        mv_ds,
        gold,
        annotators,
        audit,
        zero_defect,
        confidence,
    })
}

/// A measure, or why it is undefined on this data.
type Measure = Result<f64, String>;

/// Percent agreement, Fleiss' kappa, Krippendorff's alpha and pairwise Cohen's kappa, each from every annotator's
/// first answer on an item.
fn agreement(
    level: Level,
    d: &Data,
    options: &AnnotatorOptions,
) -> Result<(Measure, Measure, Measure, Pairwise)> {
    let (n_items, n_annotators, k) = (d.items.len(), d.annotators.len(), d.labels.len());
    let mut matrix = RatingMatrix::new(n_items, n_annotators, k)?;
    if let Some(values) = &d.values {
        matrix = matrix.with_values(values.clone())?;
    }
    let mut by_item: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n_items];
    for a in &d.answers {
        let list = &mut by_item[a.item];
        if !list.iter().any(|&(j, _)| j == a.annotator) {
            list.push((a.annotator, a.label));
            matrix.set(a.item, a.annotator, Some(a.label))?;
        }
    }
    let shown = |r: assay_quality::Result<f64>| r.map_err(|e| e.to_string());
    Ok((
        shown(percent_agreement(&matrix)),
        shown(fleiss_kappa(&matrix)),
        shown(krippendorff_alpha(&matrix, level)),
        pairwise_kappas(&by_item, n_annotators, k, options.min_shared_items),
    ))
}

/// Majority vote and Dawid-Skene against gold, and the calibration of each on gold items.
fn against_gold(
    d: &Data,
    votes: &[Vote],
    ds: &DawidSkene,
) -> Result<(GoldComparison, Vec<Confidence>)> {
    let mut cmp = GoldComparison::default();
    // (confidence, correct) on gold items, for Dawid-Skene (posterior max) and majority vote (vote share).
    let (mut ds_conf, mut ds_ok) = (Vec::new(), Vec::new());
    let (mut mv_conf, mut mv_ok) = (Vec::new(), Vec::new());
    for (i, g) in d.gold.iter().enumerate() {
        let Some(g) = *g else { continue };
        cmp.gold_items += 1;
        let vote = &votes[i];
        cmp.mv_all.total += 1;
        match vote.label {
            Some(l) => {
                cmp.mv_untied.total += 1;
                let ok = l == g;
                cmp.mv_untied.right += usize::from(ok);
                cmp.mv_all.right += usize::from(ok);
                mv_conf.push(vote.support);
                mv_ok.push(ok);
            }
            None => cmp.ties += 1,
        }
        cmp.ds.total += 1;
        if let Some(l) = ds.labels[i] {
            let ok = l == g;
            cmp.ds.right += usize::from(ok);
            ds_conf.push(ds.posterior(i)[l]);
            ds_ok.push(ok);
        }
    }
    let mut confidence = Vec::new();
    for (name, conf, ok) in [
        ("Dawid-Skene", &ds_conf, &ds_ok),
        ("majority vote", &mv_conf, &mv_ok),
    ] {
        if !conf.is_empty() {
            confidence.push(calibration(name, conf, ok)?);
        }
    }
    Ok((cmp, confidence))
}

/// The reliability bins, ECE and accuracy-vs-coverage points of one label source.
fn calibration(name: &'static str, conf: &[f64], ok: &[bool]) -> Result<Confidence> {
    let coverage = (1..=20)
        .map(|c| {
            let c = c as f64 / 20.0;
            Ok((c, accuracy_at_coverage(conf, ok, c)?))
        })
        .collect::<assay_quality::Result<Vec<_>>>()?;
    Ok(Confidence {
        name,
        bins: reliability_bins(conf, ok, RELIABILITY_BINS)?,
        ece: expected_calibration_error(conf, ok, DEFAULT_ECE_BINS)?,
        coverage,
        items: conf.len(),
    })
}

/// The audit of the majority labels on the gold items they label; `None` when there are none.
fn audit(settings: &Settings, cmp: &GoldComparison) -> Result<Option<Audit>> {
    if cmp.mv_untied.total == 0 {
        return Ok(None);
    }
    let sampled = cmp.mv_untied.total as u64;
    let errors = (cmp.mv_untied.total - cmp.mv_untied.right) as u64;
    Ok(Some(Audit {
        errors,
        sampled,
        interval: wilson_interval(errors, sampled, 0.95)?,
        decision: audit_decision(errors, sampled, settings.target_error, settings.confidence)?,
    }))
}

/// Cohen's kappa of every pair of annotators that share items, from each annotator's first answer per item.
fn pairwise_kappas(
    by_item: &[Vec<(usize, usize)>],
    annotators: usize,
    classes: usize,
    min_shared: usize,
) -> Pairwise {
    let mut tables: HashMap<(usize, usize), ContingencyTable> = HashMap::new();
    for list in by_item {
        for (x, &(a, la)) in list.iter().enumerate() {
            for &(b, lb) in &list[x + 1..] {
                let (key, (p, q)) = if a < b {
                    ((a, b), (la, lb))
                } else {
                    ((b, a), (lb, la))
                };
                let table = tables
                    .entry(key)
                    .or_insert_with(|| ContingencyTable::zeros(classes));
                // Codes come from the label table, so they are below `classes`.
                let _ = table.add(p, q);
            }
        }
    }
    let kappa = |t: &ContingencyTable| cohen_kappa(t, KappaWeights::Unweighted).ok();
    if annotators <= PAIRWISE_TABLE_MAX {
        let mut m = vec![vec![None; annotators]; annotators];
        for (&(a, b), t) in &tables {
            let cell = Some((kappa(t), t.total() as usize));
            m[a][b] = cell;
            m[b][a] = cell;
        }
        return Pairwise::Matrix(m);
    }
    let mut pairs: Vec<(f64, usize, usize, usize)> = tables
        .iter()
        .filter(|(_, t)| t.total() >= min_shared as f64)
        .filter_map(|(&(a, b), t)| kappa(t).map(|k| (k, a, b, t.total() as usize)))
        .collect();
    if pairs.is_empty() {
        return Pairwise::None { min_shared };
    }
    // Deterministic order (the map's is not): by kappa, then by the pair.
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    let n = pairs.len();
    let mean = pairs.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        pairs[n / 2].0
    } else {
        (pairs[n / 2 - 1].0 + pairs[n / 2].0) / 2.0
    };
    Pairwise::Summary {
        min_shared,
        pairs: n,
        mean,
        median,
        min: pairs[0],
        max: pairs[n - 1],
    }
}

/// "Krippendorff's alpha (nominal)".
pub fn alpha_title(level: Level) -> String {
    format!("Krippendorff's alpha ({})", level_name(level))
}

/// Annotators flagged first, then by answers (most first), then by id.
pub fn annotator_order(qc: &Qc) -> Vec<usize> {
    let scores = &qc.annotators.scores;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&scores[a], &scores[b]);
        y.flagged
            .cmp(&x.flagged)
            .then(y.answers.cmp(&x.answers))
            .then(a.cmp(&b))
    });
    order
}

/// One annotator's row of the terminal and HTML tables: annotator, answers, gold accuracy (gold answers), peer
/// kappa, Dawid-Skene accuracy, mean seconds, flag.
pub fn annotator_cells(d: &Data, s: &AnnotatorScore) -> Vec<String> {
    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or_else(|| "-".into(), f);
    vec![
        d.annotators[s.annotator].clone(),
        s.answers.to_string(),
        match s.gold_accuracy {
            Some(a) => format!("{} ({})", pct(a), s.gold_answers),
            None => "-".into(),
        },
        opt(s.peer_kappa, &|k| format!("{k:.3}")),
        opt(s.dawid_skene_accuracy, &pct),
        opt(s.mean_seconds, &|x| format!("{x:.1}")),
        if s.flagged { "FLAGGED" } else { "" }.into(),
    ]
}
