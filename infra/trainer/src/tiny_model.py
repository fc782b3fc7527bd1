"""Make a tiny random Llama and its tokenizer in DIR, with no download (REFERENCE.md §8).

Usage: tiny-model DIR [TEXT_FILE ...]

The tokenizer is a `tokenizers` WordLevel model trained on a small built-in corpus plus the given
text files (a test passes its own datasets so their words get ids), wrapped in
PreTrainedTokenizerFast with a chat template, so TRL's chat formatting works on it.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CORPUS = """
the a an is are was were be to of and or in on at for with by from as it this that
what why how who when where which question answer explain reason step because so then
yes no true false good bad better worse correct wrong right number one two three four five
model learn train data test you i we they he she think know say tell give make use
. , ? ! : ; " ( ) - + = 0 1 2 3 4 5 6 7 8 9
"""

# The chat markers are added tokens, so the whitespace pre-tokenizer never splits them.
SPECIAL = ["<pad>", "<unk>", "<s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]

# Every rendered conversation is a prefix-closed sequence of turns, which TRL's prompt/completion
# and preference processing rely on (prompt + add_generation_prompt is a prefix of the whole).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] + ' <|end|> ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] in ("-h", "--help"):
        print("usage: tiny-model DIR [TEXT_FILE ...]", file=sys.stderr)
        return 2
    out, texts = argv[0], argv[1:]

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    import torch

    lines = CORPUS.split("\n")
    for name in texts:
        with open(name, encoding="utf-8") as f:
            lines.extend(f.read().split("\n"))

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.train_from_iterator(lines, trainers.WordLevelTrainer(special_tokens=SPECIAL, min_frequency=1))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|end|>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(out)
    print(f"tiny-model: vocab {len(fast)}, {sum(p.numel() for p in model.parameters())} parameters in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
