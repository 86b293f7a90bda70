"""
Transcription accuracy end to end: the five LibriVox recordings of Debian's
pocketsphinx-testdata, uploaded through UploadVoiceNote by a signed-in user
and transcribed by twd's default engine, against their reference
transcripts. The word error rate (word-level Levenshtein distance over the
reference's word count, summed over the five files) must be no worse than
that of `pocketsphinx_continuous -infile F` on the same files plus 2
points. Both figures are printed:

    ctest --test-dir build -R e2e_voice_accuracy -V
"""
import os
import re
import subprocess
import unittest

from twd_harness import Twd
from tw.v1 import voice_service_pb2 as pb  # noqa: E402
from tw.v1 import voice_service_pb2_grpc as pb_grpc  # noqa: E402

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"
TRANSCRIBE_TIMEOUT_S = 600.0
ALLOWED_POINTS = 2.0


def references():
    """{file id: reference words} from the `transcription` file, whose lines
    read "<s> words </s> (file-id)"."""
    refs = {}
    with open(os.path.join(LIBRIVOX, "transcription")) as f:
        for line in f:
            match = re.match(r"(.*)\((\S+)\)\s*$", line.strip())
            refs[match.group(2)] = [w for w in match.group(1).split()
                                    if w not in ("<s>", "</s>")]
    return refs


def edit_distance(ref, hyp):
    """Substitutions, insertions and deletions turning ref into hyp."""
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, other in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (word != other))
        previous = current
    return previous[-1]


def baseline(path):
    """What pocketsphinx_continuous hears in a file, as words."""
    out = subprocess.run(["pocketsphinx_continuous", "-infile", path], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         timeout=300).stdout
    return out.split()


class VoiceAccuracyTest(unittest.TestCase):
    def test_librivox_word_error_rate_matches_pocketsphinx_continuous(self):
        refs = references()
        self.assertEqual(len(refs), 5)
        with Twd(env={"TW_VOICE_TRANSCRIBERS": "1", "TW_VOICE_LIVE_DECODERS": "1"}) as twd:
            me = twd.sign_up()
            voice = pb_grpc.VoiceServiceStub(twd.channel())
            ours = baseline_errors = words = 0
            for file_id, ref in sorted(refs.items()):
                path = os.path.join(LIBRIVOX, f"{file_id}.wav")
                with open(path, "rb") as f:
                    data = f.read()
                messages = [pb.UploadVoiceNoteRequest(metadata=pb.VoiceNoteMetadata(
                    file_name=f"{file_id}.wav", content_type="audio/wav"))]
                messages += [pb.UploadVoiceNoteRequest(chunk=data[i:i + 65536])
                             for i in range(0, len(data), 65536)]
                note = voice.UploadVoiceNote(iter(messages), metadata=me.metadata,
                                             timeout=TRANSCRIBE_TIMEOUT_S).voice_note
                final = list(voice.WatchVoiceNote(pb.WatchVoiceNoteRequest(id=note.id),
                                                  metadata=me.metadata,
                                                  timeout=TRANSCRIBE_TIMEOUT_S))[-1].voice_note
                self.assertEqual(final.status, pb.VOICE_NOTE_STATUS_TRANSCRIBED,
                                 final.failure_reason)
                hyp = final.transcript.text.split()
                base = baseline(path)
                ours += edit_distance(ref, hyp)
                baseline_errors += edit_distance(ref, base)
                words += len(ref)
                print(f"{file_id}: ours \"{' '.join(hyp)}\"\n"
                      f"{' ' * len(file_id)}  base \"{' '.join(base)}\"")
        wer = 100.0 * ours / words
        baseline_wer = 100.0 * baseline_errors / words
        print(f"WER over {words} reference words: UploadVoiceNote + twd's pocketsphinx engine "
              f"{wer:.2f}% ({ours} errors), pocketsphinx_continuous -infile "
              f"{baseline_wer:.2f}% ({baseline_errors} errors)")
        self.assertLessEqual(wer, baseline_wer + ALLOWED_POINTS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
