from tutelage.evals.metrics import closest_choice, label_match, normalize_label


def test_normalize_label_forgives_case_spaces_quotes_and_trailing_text_lines() -> None:
    assert normalize_label("Card Arrival") == "card_arrival"
    assert normalize_label('  "card_arrival".  ') == "card_arrival"
    assert normalize_label("\n\ncard-arrival\nbecause the card is late") == "card_arrival"
    assert normalize_label("Refund_not_showing_up") == "refund_not_showing_up"


def test_label_match_is_exact_after_normalisation() -> None:
    assert label_match("Card arrival", "card_arrival") == 1.0
    assert label_match("reverted_card_payment", "reverted_card_payment?") == 1.0
    assert label_match("card_arrival_delay", "card_arrival") == 0.0
    assert label_match("", "card_arrival") == 0.0


def test_closest_choice_reads_a_near_miss_as_the_label_it_resembles() -> None:
    labels = ["Refund_not_showing_up", "card_arrival", "change_pin"]
    assert closest_choice("refuse_not_showing_up", labels) == "Refund_not_showing_up"
    assert closest_choice("Card Arrival.", labels) == "card_arrival"
    assert closest_choice("anything", []) == "anything"
