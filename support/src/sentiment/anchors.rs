//! Sentiment for languages VADER's English lexicon doesn't know: how close a text's
//! embedding is to labelled anchor sentences, with the multilingual embedding model
//! (multilingual-e5-small maps a German complaint near an English or French one).
//! No German lexicon with a licence we may ship is good enough (docs/multilingual.md),
//! while these anchors are ours and carry only the model's MIT licence.
//!
//! The anchors are short customer messages in several European languages; the
//! evaluation sentences (tests/data/multilingual/sentiment_de.tsv) are different ones.

/// Clearly positive customer messages.
pub const POSITIVE: [&str; 10] = [
    "Vielen Dank, das hat mir sehr geholfen, super Service!",
    "Ich bin rundum zufrieden, alles hat perfekt geklappt.",
    "Toll, die Lieferung kam schneller als erwartet. 😊",
    "Freundlicher Support, das Problem war sofort gelöst.",
    "Thank you so much, the support was excellent and fast!",
    "I love this product, it works perfectly.",
    "Merci beaucoup, je suis très satisfait du service.",
    "¡Muchas gracias, todo funcionó de maravilla!",
    "Grazie mille, servizio eccellente e veloce.",
    "Heel erg bedankt, echt een geweldige service!",
];

/// Clearly negative customer messages.
pub const NEGATIVE: [&str; 10] = [
    "Das ist eine Frechheit, ich bin extrem verärgert!",
    "Seit Wochen keine Antwort, ich bin total enttäuscht.",
    "Das Produkt ist kaputt angekommen und niemand hilft mir. 😡",
    "Schlechtester Kundenservice, den ich je erlebt habe.",
    "This is unacceptable, I am furious and want a refund now!",
    "Terrible experience, nothing works and nobody answers.",
    "C'est inadmissible, je suis très mécontent du service.",
    "¡Es una vergüenza, estoy muy enfadado con este servicio!",
    "Servizio pessimo, sono molto deluso e arrabbiato.",
    "Waardeloze service, ik ben echt boos en teleurgesteld.",
];

/// The anchors of each side a text is compared with (its closest ones): a message
/// is like some positive messages, not like all of them.
const NEAREST: usize = 3;
/// Stretches the similarity difference (typically within ±0.06 for e5) onto -1..1:
/// chosen on the anchors alone (each anchor against the others scores beyond ±0.5),
/// not on the evaluation set.
const SCALE: f64 = 25.0;

/// The score (-1..1) of a text from its embedding and the anchors' (unit vectors in
/// the order of [`POSITIVE`] and [`NEGATIVE`]): the mean similarity to its nearest
/// positive anchors minus that to its nearest negative ones, stretched by a tanh.
pub fn score(text: &[f32], positive: &[Vec<f32>], negative: &[Vec<f32>]) -> f64 {
    let nearest = |anchors: &[Vec<f32>]| -> f64 {
        let mut similarities: Vec<f64> = anchors
            .iter()
            .map(|anchor| {
                anchor
                    .iter()
                    .zip(text)
                    .map(|(a, b)| f64::from(a * b))
                    .sum::<f64>()
            })
            .collect();
        similarities.sort_by(|a, b| b.total_cmp(a));
        let taken = similarities.len().clamp(1, NEAREST);
        similarities.iter().take(taken).sum::<f64>() / taken as f64
    };
    ((nearest(positive) - nearest(negative)) * SCALE).tanh()
}

#[cfg(test)]
mod tests {
    use std::f32::consts::FRAC_1_SQRT_2;

    use super::*;

    #[test]
    fn closer_to_the_negative_anchors_is_negative() {
        let positive = vec![vec![1.0, 0.0], vec![0.9, 0.1]];
        let negative = vec![vec![0.0, 1.0], vec![0.1, 0.9]];
        assert!(score(&[0.2, 0.98], &positive, &negative) < -0.9);
        assert!(score(&[0.98, 0.2], &positive, &negative) > 0.9);
        assert!(score(&[FRAC_1_SQRT_2, FRAC_1_SQRT_2], &positive, &negative).abs() < 1e-6);
    }
}
