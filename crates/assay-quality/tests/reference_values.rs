//! The quality statistics against published reference values and real crowd data.
//!
//! Every expected number here comes from a publication or the dataset's own documentation, never from this code:
//! Krippendorff (2011), Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page, Cohen's kappa by hand, the
//! PandaLM paper's inter-annotator kappas, and Snow et al. (2008)'s RTE majority-vote figures. The crowd data lives
//! in the repository's `tests/data` (see its README for provenance, licenses and what each slice keeps).

use std::collections::HashMap;
use std::path::PathBuf;

use assay_quality::aggregation::{
    dawid_skene, majority_vote, Answer, DawidSkeneOptions, TiePolicy,
};
use assay_quality::agreement::{
    cohen_kappa, fleiss_kappa, fleiss_kappa_from_counts, krippendorff_alpha, percent_agreement,
    ContingencyTable, KappaWeights, Level, RatingMatrix,
};
use assay_quality::annotators::{score_annotators, AnnotatorInput, AnnotatorOptions, FlagBasis};

/// The repository's `tests/data`; missing data fails the test.
fn datasets() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests read the data slices kept in the repository",
        dir.display()
    );
    dir
}

fn assert_3dp(name: &str, got: f64, published: f64) {
    assert!(
        (got - published).abs() < 5e-4,
        "{name}: {got:.6} does not round to the published {published:.3}"
    );
}

/// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C (four coders, missing values):
/// nominal .743, ordinal .815, interval .849, ratio .797.
#[test]
fn krippendorff_2011_worked_example() {
    let coders: Vec<Vec<Option<f64>>> = [
        "1 2 3 3 2 1 4 1 2 . . .",
        "1 2 3 3 2 2 4 1 2 5 . 3",
        ". 3 3 3 2 3 4 2 2 5 1 .",
        "1 2 3 3 2 4 4 1 2 5 1 .",
    ]
    .iter()
    .map(|row| row.split(' ').map(|v| v.parse().ok()).collect())
    .collect();
    let data = RatingMatrix::from_coder_values(&coders).unwrap();
    assert_eq!((data.units(), data.coders()), (12, 4));
    // The paper's coincidence matrix has n = 40 pairable values (unit 12 has one value and drops out).
    assert_eq!(data.coincidences().total, 40.0);
    for (level, published) in [
        (Level::Nominal, 0.743),
        (Level::Ordinal, 0.815),
        (Level::Interval, 0.849),
        (Level::Ratio, 0.797),
    ] {
        assert_3dp(
            &format!("{level:?}"),
            krippendorff_alpha(&data, level).unwrap(),
            published,
        );
    }

    // The same data as category codes 0..4 with values 1..5: codes and a value table give the same alphas.
    let coded: Vec<Vec<Option<usize>>> = coders
        .iter()
        .map(|r| r.iter().map(|v| v.map(|v| v as usize - 1)).collect())
        .collect();
    let coded = RatingMatrix::from_coder_rows(&coded, 5)
        .unwrap()
        .with_values(vec![1.0, 2.0, 3.0, 4.0, 5.0])
        .unwrap();
    assert_3dp(
        "ratio from codes",
        krippendorff_alpha(&coded, Level::Ratio).unwrap(),
        0.797,
    );
}

/// Fleiss (1971) kappa, the worked example on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters,
/// 5 categories, kappa = 0.210.
#[test]
fn fleiss_kappa_wikipedia_example() {
    let counts: [[u32; 5]; 10] = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ];
    assert_3dp("fleiss", fleiss_kappa_from_counts(&counts).unwrap(), 0.210);

    // The same ratings as a 10 x 14 rating matrix (coder order does not matter to Fleiss' kappa). The page also
    // gives P-bar = 0.378, the mean per-subject agreement that percent_agreement computes.
    let rows: Vec<Vec<Option<usize>>> = counts
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .flat_map(|(c, &n)| std::iter::repeat_n(Some(c), n as usize))
                .collect()
        })
        .collect();
    let m = RatingMatrix::from_unit_rows(&rows, 5).unwrap();
    assert_3dp("fleiss from matrix", fleiss_kappa(&m).unwrap(), 0.210);
    assert_3dp("P-bar", percent_agreement(&m).unwrap(), 0.378);
}

/// Cohen's kappa of [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5, kappa = 0.4.
#[test]
fn cohen_kappa_two_by_two() {
    let t = ContingencyTable::from_rows(&[[20.0, 5.0], [10.0, 15.0]]).unwrap();
    assert_3dp(
        "cohen",
        cohen_kappa(&t, KappaWeights::Unweighted).unwrap(),
        0.400,
    );
    // With two categories every weighting is the same.
    assert_3dp(
        "linear",
        cohen_kappa(&t, KappaWeights::Linear).unwrap(),
        0.400,
    );
    assert_3dp(
        "quadratic",
        cohen_kappa(&t, KappaWeights::Quadratic).unwrap(),
        0.400,
    );
}

/// PandaLM (Wang et al. 2023) test set: three annotators' pairwise Cohen's kappas are 0.852, 0.879 and 0.862.
#[test]
fn pandalm_pairwise_kappas() {
    let path = datasets().join("pandalm/testset-v1.annotators.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(records.len(), 999);
    let rows: Vec<Vec<Option<usize>>> = records
        .iter()
        .map(|r| {
            (1..=3)
                .map(|a| r[format!("annotator{a}")].as_u64().map(|v| v as usize))
                .collect()
        })
        .collect();
    let m = RatingMatrix::from_unit_rows(&rows, 3).unwrap();
    for (a, b, published) in [(0, 1, 0.852), (0, 2, 0.879), (1, 2, 0.862)] {
        let kappa = cohen_kappa(&m.contingency(a, b).unwrap(), KappaWeights::Unweighted).unwrap();
        eprintln!(
            "PandaLM annotator{} vs annotator{}: kappa {kappa:.4}",
            a + 1,
            b + 1
        );
        assert_3dp(&format!("annotators {}-{}", a + 1, b + 1), kappa, published);
    }
}

/// Answers indexed densely from string ids.
#[derive(Default)]
struct Crowd {
    items: HashMap<String, usize>,
    workers: HashMap<String, usize>,
    answers: Vec<Answer>,
}

impl Crowd {
    fn add(&mut self, item: &str, worker: &str, label: usize) {
        let n = self.items.len();
        let item = *self.items.entry(item.to_owned()).or_insert(n);
        let n = self.workers.len();
        let worker = *self.workers.entry(worker.to_owned()).or_insert(n);
        self.answers.push(Answer::new(item, worker, label));
    }
}

/// Accuracy of `labels` against `gold` over the items with gold; `None` labels count as wrong.
fn accuracy(labels: &[Option<usize>], gold: &[Option<usize>]) -> (usize, usize) {
    let mut right = 0;
    let mut total = 0;
    for (l, g) in labels.iter().zip(gold) {
        if let Some(g) = g {
            total += 1;
            right += usize::from(*l == Some(*g));
        }
    }
    (right, total)
}

/// Snow et al. (2008) RTE: 800 items x 10 workers. Majority vote without ties agrees with the expert gold on
/// 685 of the 735 untied items (93.2%), and 65 items tie 5-5. Dawid-Skene must do at least as well as majority
/// vote over all 800 items, both with ties counted as wrong and with ties broken at random (seeded); and it must
/// land within half a point of another library's Dawid-Skene (crowd-kit 1.4.2, `DawidSkene(n_iter=100, tol=1e-6)`:
/// 742 of 800, 92.75%).
#[test]
fn snow_2008_rte_majority_vote_and_dawid_skene() {
    let path = datasets().join("snow2008/rte.answers.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (worker, item, response, gold_col) = (
        col("!amt_worker_ids"),
        col("orig_id"),
        col("response"),
        col("gold"),
    );
    let mut crowd = Crowd::default();
    let mut gold_by_id: HashMap<String, usize> = HashMap::new();
    for record in reader.records() {
        let r = record.unwrap();
        crowd.add(&r[item], &r[worker], r[response].parse().unwrap());
        gold_by_id.insert(r[item].to_owned(), r[gold_col].parse().unwrap());
    }
    let n_items = crowd.items.len();
    let n_workers = crowd.workers.len();
    assert_eq!((n_items, crowd.answers.len()), (800, 8000));
    let mut gold = vec![None; n_items];
    for (id, &i) in &crowd.items {
        gold[i] = Some(gold_by_id[id]);
    }

    let votes = majority_vote(&crowd.answers, n_items, 2, TiePolicy::Report).unwrap();
    let ties = votes.iter().filter(|v| v.label.is_none()).count();
    let untied: Vec<Option<usize>> = votes.iter().map(|v| v.label).collect();
    let (mv_right, _) = accuracy(&untied, &gold);
    eprintln!(
        "RTE majority vote: {mv_right} of {} untied items agree with gold, {ties} ties",
        n_items - ties
    );
    assert_eq!(ties, 65);
    assert_eq!(mv_right, 685);

    let random: Vec<Option<usize>> =
        majority_vote(&crowd.answers, n_items, 2, TiePolicy::Random { seed: 2008 })
            .unwrap()
            .iter()
            .map(|v| v.label)
            .collect();
    let (mv_random_right, _) = accuracy(&random, &gold);

    let ds = dawid_skene(
        &crowd.answers,
        n_items,
        n_workers,
        2,
        &DawidSkeneOptions::default(),
    )
    .unwrap();
    let (ds_right, total) = accuracy(&ds.labels, &gold);
    let pct = |x: usize| 100.0 * x as f64 / total as f64;
    eprintln!(
        "RTE on all {total} items: majority vote {mv_right} ({:.2}%, ties wrong), {mv_random_right} ({:.2}%, ties \
         random); Dawid-Skene {ds_right} ({:.2}%, {} iterations, converged {})",
        pct(mv_right),
        pct(mv_random_right),
        pct(ds_right),
        ds.iterations,
        ds.converged
    );
    assert!(ds.converged);
    assert!(
        ds_right >= mv_right,
        "Dawid-Skene {ds_right} < majority vote with ties wrong {mv_right}"
    );
    assert!(
        ds_right >= mv_random_right,
        "Dawid-Skene {ds_right} < majority vote with random ties {mv_random_right}"
    );

    // Annotator report on the same data: anyone flagged on gold must also sit below the median peer kappa.
    let input = AnnotatorInput {
        gold: &gold,
        dawid_skene: Some(&ds),
        ..AnnotatorInput::new(&crowd.answers, n_items, n_workers, 2)
    };
    let report = score_annotators(&input, &AnnotatorOptions::default()).unwrap();
    assert_eq!(report.flag_basis, Some(FlagBasis::Gold));
    let mut kappas: Vec<f64> = report.scores.iter().filter_map(|s| s.peer_kappa).collect();
    kappas.sort_by(f64::total_cmp);
    let median_kappa = kappas[kappas.len() / 2];
    let flagged: Vec<_> = report.scores.iter().filter(|s| s.flagged).collect();
    eprintln!(
        "RTE annotators: {} of {n_workers} flagged (gold accuracy below {:.3}; median {:.3})",
        flagged.len(),
        report.cutoff.unwrap(),
        report.median.unwrap()
    );
    assert!(
        !flagged.is_empty(),
        "Snow et al. report RTE workers near chance; some should be flagged"
    );
    for s in flagged {
        assert!(s.peer_kappa.unwrap_or(0.0) < median_kappa, "{s:?}");
    }
}

/// Reads a Get-Another-Label dataset: `labels.txt` (worker, item, label), `gold.txt` (item, label) and
/// `categories.txt` (one category per line, maybe followed by a prior). Category names are matched
/// case-insensitively.
fn get_another_label(name: &str) -> (Crowd, Vec<Option<usize>>, usize) {
    let dir = datasets().join("get_another_label").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let categories: Vec<String> = read("categories.txt")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_uppercase)
        .collect();
    let code = |label: &str| {
        categories
            .iter()
            .position(|c| *c == label.trim().to_uppercase())
            .unwrap_or_else(|| panic!("{name}: unknown category {label:?}"))
    };
    let mut crowd = Crowd::default();
    for line in read("labels.txt").lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        crowd.add(f[1], f[0], code(f[2]));
    }
    let mut gold = vec![None; crowd.items.len()];
    for line in read("gold.txt").lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if let Some(&i) = crowd.items.get(f[0]) {
            gold[i] = Some(code(f[1]));
        }
    }
    (crowd, gold, categories.len())
}

/// Get-Another-Label's AdultContent2: majority vote and Dawid-Skene accuracy on the gold items that have labels
/// (the slice in `tests/data` keeps only the answers on those items). Ties count as wrong for majority vote;
/// Dawid-Skene must not fall more than a point below it.
#[test]
fn get_another_label_adult_content() {
    let (crowd, gold, classes) = get_another_label("AdultContent2");
    let (items, workers) = (crowd.items.len(), crowd.workers.len());
    let mv: Vec<Option<usize>> = majority_vote(&crowd.answers, items, classes, TiePolicy::Report)
        .unwrap()
        .iter()
        .map(|v| v.label)
        .collect();
    let ds = dawid_skene(
        &crowd.answers,
        items,
        workers,
        classes,
        &DawidSkeneOptions::default(),
    )
    .unwrap();
    let (mv_right, total) = accuracy(&mv, &gold);
    let (ds_right, _) = accuracy(&ds.labels, &gold);
    let (mv_acc, ds_acc) = (
        mv_right as f64 / total as f64,
        ds_right as f64 / total as f64,
    );
    eprintln!(
        "AdultContent2: {} answers, {items} items, {workers} workers, {total} gold items with answers; majority \
         vote {mv_acc:.3} (ties wrong), Dawid-Skene {ds_acc:.3} ({} iterations)",
        crowd.answers.len(),
        ds.iterations
    );
    assert!(total > 300, "only {total} gold items have answers");
    assert!(
        mv_acc > 0.5,
        "majority vote {mv_acc} is no better than a coin"
    );
    assert!(
        ds_acc >= mv_acc - 0.01,
        "Dawid-Skene {ds_acc} vs majority vote {mv_acc}"
    );
}

/// Get-Another-Label's HITspam-UsingMTurk: its `gold.txt` names items by mturk-tracker URL while `labels.txt` uses
/// HIT group ids, so no gold item has answers and accuracy cannot be measured (the test checks that this is still
/// so; if the data changes, measure accuracy as for AdultContent2). Many of its workers are spammers (Ipeirotis,
/// Provost and Wang 2010), so Dawid-Skene departs from majority vote on many items. The reference is another
/// library: crowd-kit 1.4.2's `DawidSkene(n_iter=100, tol=1e-6)` on the same answers labels 28.6% of the 5,840
/// items YES and agrees with untied majority votes on 71.0% of them.
#[test]
fn get_another_label_hit_spam() {
    let (crowd, gold, classes) = get_another_label("HITspam-UsingMTurk");
    let (items, workers) = (crowd.items.len(), crowd.workers.len());
    assert_eq!(gold.iter().flatten().count(), 0);
    let mv = majority_vote(&crowd.answers, items, classes, TiePolicy::Report).unwrap();
    let ds = dawid_skene(
        &crowd.answers,
        items,
        workers,
        classes,
        &DawidSkeneOptions::default(),
    )
    .unwrap();
    let untied: Vec<usize> = (0..items).filter(|&i| mv[i].label.is_some()).collect();
    let same = untied
        .iter()
        .filter(|&&i| mv[i].label == ds.labels[i])
        .count();
    let agreement = same as f64 / untied.len() as f64;
    let yes =
        |labels: &mut dyn Iterator<Item = Option<usize>>| labels.filter(|l| *l == Some(1)).count();
    let mv_yes = yes(&mut mv.iter().map(|v| v.label)) as f64 / items as f64;
    let ds_yes = yes(&mut ds.labels.iter().copied()) as f64 / items as f64;
    eprintln!(
        "HITspam: {} answers, {items} items, {workers} workers, no gold item with answers; Dawid-Skene agrees with \
         majority vote on {agreement:.4} of {} untied items; YES share: majority vote {mv_yes:.4}, Dawid-Skene \
         {ds_yes:.4} ({} iterations)",
        crowd.answers.len(),
        untied.len(),
        ds.iterations
    );
    assert!(
        (agreement - 0.710).abs() < 0.01,
        "agreement with majority vote {agreement}"
    );
    assert!((ds_yes - 0.286).abs() < 0.01, "YES share {ds_yes}");
}

/// Confident learning against Python cleanlab 2.7.1 (`tests/fixtures/cleanlab_cases.py` wrote the fixture):
/// thresholds, the calibrated confident joint, and the ranked issues of every filter and ranking, on three
/// synthetic noisy datasets (2, 3 and 5 classes).
#[test]
fn confident_learning_matches_cleanlab() {
    use assay_quality::label_errors::{
        confident_joint, confident_thresholds, find_label_issues, FilterBy, LabelIssueOptions,
        RankBy,
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cleanlab_cases.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let seed = &case["seed"];
        let labels: Vec<usize> = serde_json::from_value(case["labels"].clone()).unwrap();
        let probs: Vec<Vec<f64>> = serde_json::from_value(case["pred_probs"].clone()).unwrap();
        let want_thresholds: Vec<f64> = serde_json::from_value(case["thresholds"].clone()).unwrap();
        let thresholds = confident_thresholds(&labels, &probs).unwrap();
        for (got, want) in thresholds.iter().zip(&want_thresholds) {
            assert!(
                (got - want).abs() < 1e-12,
                "case {seed}: threshold {got} vs {want}"
            );
        }
        let want_joint: Vec<Vec<u64>> =
            serde_json::from_value(case["confident_joint"].clone()).unwrap();
        let joint = confident_joint(&labels, &probs, &thresholds, true).unwrap();
        assert_eq!(
            joint.counts,
            want_joint.concat(),
            "case {seed}: confident joint"
        );
        for (filter_by, name) in [
            (FilterBy::PruneByClass, "prune_by_class"),
            (FilterBy::PruneByNoiseRate, "prune_by_noise_rate"),
            (FilterBy::Both, "both"),
            (FilterBy::ConfidentLearning, "confident_learning"),
        ] {
            for (rank_by, rank_name) in [
                (RankBy::SelfConfidence, "self_confidence"),
                (RankBy::NormalizedMargin, "normalized_margin"),
            ] {
                let want: Vec<usize> =
                    serde_json::from_value(case[format!("{name}/{rank_name}")].clone()).unwrap();
                let options = LabelIssueOptions {
                    filter_by,
                    rank_by,
                    ..LabelIssueOptions::default()
                };
                let got = find_label_issues(&labels, &probs, &options).unwrap();
                assert_eq!(
                    got.ranked, want,
                    "case {seed}: {name} ranked by {rank_name}"
                );
            }
        }
    }
}
