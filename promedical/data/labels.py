"""Category and specialty labels by an embedding nearest-prototype classifier (MiniLM), not by an LLM.

Each label has a short prototype description; an instruction gets the label whose prototype embedding is closest
(cosine), with the similarity kept as ``*_score`` so weak assignments can be filtered. Deterministic, cheap and
offline; the label sets and prototype texts are versioned constants (``LABELS_VERSION``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from promedical.data.instruction import Instruction

LABELS_VERSION = "labels/v2"
CATEGORIES_V1: dict[str, str] = {
    "diagnosis": "What could be causing my symptoms? Possible diagnosis, differential diagnosis, signs and tests.",
    "treatment": "How is this condition treated? Medication, dosage, drug interactions, side effects, surgery.",
    "prevention_lifestyle": "How can I prevent this? Diet, exercise, lifestyle, vaccination, screening, risk factors.",
    "medical_knowledge": "Explain what this disease is, its causes, mechanism, genetics, prognosis and research.",
    "urgent_safety": "Is this an emergency? Severe pain, bleeding, overdose, suicidal thoughts, should I go to the ER.",
}
# v2: the treatment prototype names drug-combination questions ("can I take X with Y?"), which v1 sent to
# urgent_safety.
CATEGORIES_V2: dict[str, str] = {
    **CATEGORIES_V1,
    "treatment": "How is this treated? Which medicine should I take, can I take this drug with another drug, "
    "dosage, interactions, side effects, surgery.",
}
SPECIALTIES_V1: dict[str, str] = {
    "cardiology": "heart, chest pain, blood pressure, hypertension, arrhythmia, heart attack, cholesterol",
    "pulmonology": "lungs, breathing, asthma, COPD, cough, pneumonia, shortness of breath",
    "gastroenterology": "stomach, bowel, liver, diarrhea, constipation, reflux, abdominal pain, hepatitis",
    "endocrinology": "diabetes, thyroid, hormones, insulin, blood sugar, obesity, metabolism",
    "neurology": "brain, nerves, headache, migraine, seizure, stroke, dementia, multiple sclerosis",
    "psychiatry": "depression, anxiety, mental health, panic attacks, antidepressants, sleep, addiction",
    "infectious_disease": "infection, fever, virus, bacteria, antibiotics, HIV, tuberculosis, malaria, vaccine",
    "oncology": "cancer, tumour, leukemia, lymphoma, chemotherapy, radiation, metastasis",
    "dermatology": "skin, rash, acne, eczema, psoriasis, itching, moles, hair loss",
    "obstetrics_gynecology": "pregnancy, menstruation, period, contraception, fertility, postpartum, ovaries, uterus",
    "pediatrics": "child, baby, infant, toddler, newborn, my son, my daughter, vaccination schedule",
    "urology_nephrology": "kidney, urine, bladder, prostate, urinary infection, testes, erectile dysfunction",
    "musculoskeletal": "bones, joints, back pain, arthritis, fracture, muscle, sports injury, osteoporosis",
    "ophthalmology_ent": "eyes, vision, ears, hearing, nose, throat, sinus, tonsils",
    "hematology": "blood, anemia, clotting, platelets, bleeding disorder, iron deficiency",
    "pharmacology": "medication, drug, dose, side effects, interactions, over-the-counter, prescription",
    "genetics": "genetic disorder, inherited, gene mutation, chromosome, syndrome, hereditary",
    "general_medicine": "general health question, checkup, symptoms in general, primary care, wellbeing",
}


def nearest_labels(vectors: np.ndarray, prototypes: np.ndarray, names: Sequence[str]) -> list[tuple[str, float]]:
    """Pure: the closest prototype (cosine of unit vectors) per row, with its similarity."""
    sims = vectors @ prototypes.T
    best = sims.argmax(axis=1)
    return [(names[int(b)], float(sims[i, int(b)])) for i, b in enumerate(best)]


def label_instructions(
    instructions: Sequence[Instruction], embed_fn: Callable[[list[str]], np.ndarray] | None = None
) -> tuple[list[Instruction], dict[str, dict[str, int]]]:
    """Add ``category``, ``specialty`` (and their scores) to ``meta``; returns the records and label counts."""
    if embed_fn is None:
        from promedical.data.embeddings import embed

        embed_fn = embed
    if not instructions:
        return [], {"category": {}, "specialty": {}}
    texts = [i.text for i in instructions]
    vectors = embed_fn(texts)
    cat_names, spec_names = list(CATEGORIES_V2), list(SPECIALTIES_V1)
    categories = nearest_labels(vectors, embed_fn(list(CATEGORIES_V2.values())), cat_names)
    specialties = nearest_labels(vectors, embed_fn(list(SPECIALTIES_V1.values())), spec_names)
    out = [
        item.with_meta(category=c, category_score=round(cs, 4), specialty=s, specialty_score=round(ss, 4),
                       labeller=f"minilm-prototypes:{LABELS_VERSION}")
        for item, (c, cs), (s, ss) in zip(instructions, categories, specialties, strict=True)
    ]
    counts = {"category": dict(Counter(c for c, _ in categories).most_common()),
              "specialty": dict(Counter(s for s, _ in specialties).most_common())}
    return out, counts
