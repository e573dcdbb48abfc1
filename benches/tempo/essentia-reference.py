#!/usr/bin/env python3
"""Essentia reference tempo figures for a corpus with a truth.csv.

  essentia-reference.py CORPUS [--out FILE.csv] [--jobs N] [--kinds synthetic,edge,real]

Runs RhythmExtractor2013(method='multifeature') (MonoLoader, 44.1 kHz) on every
row of CORPUS/truth.csv that has a bpm, prints one line per file and the
scores overall, per kind and per style:

  Accuracy1  estimate within 4 % of the truth (quarter-note bpm)
  Accuracy2  within 4 % of the truth x 1, 2, 1/2, 3 or 1/3
  Acc1+alt   Accuracy1 that also accepts the row's bpm_alternatives
  3:2 / 2:3  estimate within 4 % of 1.5 x or 2/3 x the truth (counted apart)

and writes one CSV row per file (default CORPUS/essentia-<corpus name>.csv).
Needs the essentia wheel from PyPI, e.g. in a venv:
  python3 -m venv /work/essentia-venv && /work/essentia-venv/bin/pip install essentia
  /work/essentia-venv/bin/python benches/tempo/essentia-reference.py /work/tempo-sets
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TOL = 0.04
RATIOS = [(1.0, 'ok'), (2.0, 'x2'), (0.5, 'x1/2'), (3.0, 'x3'), (1 / 3.0, 'x1/3'),
          (1.5, '3:2'), (2 / 3.0, '2:3'), (4 / 3.0, '4:3'), (0.75, '3:4')]


def near(est, target):
    return abs(est - target) <= TOL * target


def classify(est, truth):
    if est is None or est <= 0:
        return 'no-estimate'
    for f, name in RATIOS:
        if near(est, truth * f):
            return name
    return 'other'


def analyse_in_child(path, timeout):
    """one file in its own process: a decoder that hangs or crashes (essentia's loader
    hangs on Ogg Opus, for one) costs that file only"""
    t = time.time()
    try:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), '--one', path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error='timed out after %d s' % timeout, seconds=time.time() - t)
    try:
        return json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = r.stderr.decode(errors='replace').strip().splitlines()
        return dict(error='analysis process died (rc=%d): %s' % (r.returncode, err[-1][:150] if err else ''),
                    seconds=time.time() - t)


def analyse(path):
    import essentia
    import essentia.standard as es
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    t = time.time()
    try:
        audio = es.MonoLoader(filename=path, sampleRate=44100)()
        if len(audio) < 44100:
            return dict(error='audio shorter than 1 s (%d samples)' % len(audio), seconds=time.time() - t)
        bpm, ticks, conf, _, _ = es.RhythmExtractor2013(method='multifeature')(audio)
        return dict(bpm=float(bpm), confidence=float(conf), n_beats=len(ticks),
                    audio_s=len(audio) / 44100.0, seconds=time.time() - t)
    except Exception as ex:      # essentia raises RuntimeError on undecodable input
        return dict(error=str(ex).strip().splitlines()[0][:200] if str(ex).strip() else repr(ex),
                    seconds=time.time() - t)


def summarise(rows, key):
    groups = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = []
    for g in sorted(groups):
        rs = groups[g]
        n = len(rs)
        c = lambda f: sum(1 for r in rs if f(r))    # noqa: E731
        out.append(dict(group=g, n=n, acc1=c(lambda r: r['acc1'] == '1'), acc2=c(lambda r: r['acc2'] == '1'),
                        acc1_alt=c(lambda r: r['acc1_alt'] == '1'),
                        e32=c(lambda r: r['error_class'] == '3:2'), e23=c(lambda r: r['error_class'] == '2:3'),
                        x2=c(lambda r: r['error_class'] == 'x2'), half=c(lambda r: r['error_class'] == 'x1/2'),
                        x3=c(lambda r: r['error_class'] in ('x3', 'x1/3')),
                        other=c(lambda r: r['error_class'] in ('other', '4:3', '3:4')),
                        failed=c(lambda r: r['error_class'] in ('load-error', 'no-estimate'))))
    return out


def print_table(title, summ):
    print('\n%s' % title)
    print('  %-22s %4s %13s %13s %13s %4s %4s %4s %4s %4s %5s %4s' % (
        'group', 'n', 'Accuracy1', 'Accuracy2', 'Acc1+alt', '3:2', '2:3', 'x2', 'x1/2', 'x3|', 'other', 'fail'))
    for s in summ:
        pct = lambda k: '%3d (%5.1f%%)' % (s[k], 100.0 * s[k] / s['n']) if s['n'] else '-'   # noqa: E731
        print('  %-22s %4d %13s %13s %13s %4d %4d %4d %4d %4d %5d %4d' % (
            s['group'][:22], s['n'], pct('acc1'), pct('acc2'), pct('acc1_alt'), s['e32'], s['e23'], s['x2'],
            s['half'], s['x3'], s['other'], s['failed']))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('corpus')
    ap.add_argument('--out', help='CSV to write (default CORPUS/essentia-<name>.csv)')
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--kinds', default=None, help='comma list of kinds to include (default: all with a bpm)')
    ap.add_argument('--timeout', type=int, default=600, help='seconds allowed per file')
    ap.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(analyse(a.corpus)))
        return
    try:
        import essentia
    except ImportError:
        sys.exit('essentia is not importable: python3 -m venv /work/essentia-venv && '
                 '/work/essentia-venv/bin/pip install essentia, then run this with /work/essentia-venv/bin/python')
    root = os.path.abspath(a.corpus)
    truth = list(csv.DictReader(open(os.path.join(root, 'truth.csv'), encoding='utf-8')))
    kinds = set(a.kinds.split(',')) if a.kinds else None
    todo = [r for r in truth if r['bpm'] and (kinds is None or r['kind'] in kinds)]
    out = a.out or os.path.join(root, 'essentia-%s.csv' % os.path.basename(root.rstrip('/')))
    print('essentia %s, RhythmExtractor2013(method=multifeature), MonoLoader 44.1 kHz; %d rows with a bpm in %s'
          % (essentia.__version__, len(todo), os.path.join(root, 'truth.csv')), flush=True)
    t0 = time.time()
    rows = []
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        results = pool.map(lambda r: analyse_in_child(os.path.join(root, r['path']), a.timeout), todo)
        for r, res in zip(todo, results):
            truth_bpm = float(r['bpm'])
            alts = [float(x) for x in r.get('bpm_alternatives', '').split('|') if x]
            est = res.get('bpm')
            cls = 'load-error' if 'error' in res else classify(est, truth_bpm)
            ok1 = est is not None and near(est, truth_bpm)
            ok2 = est is not None and any(near(est, truth_bpm * f) for f in (1, 2, 0.5, 3, 1 / 3.0))
            ok1a = est is not None and any(near(est, b) for b in [truth_bpm] + alts)
            row = dict(path=r['path'], kind=r['kind'], style=r['style'], meter=r.get('meter', ''),
                       swing=r.get('swing', ''), format=r['format'], truth_bpm=r['bpm'],
                       bpm_alternatives=r.get('bpm_alternatives', ''),
                       essentia_bpm='%.3f' % est if est is not None else '',
                       confidence='%.3f' % res['confidence'] if 'confidence' in res else '',
                       ratio='%.4f' % (est / truth_bpm) if est else '',
                       acc1='1' if ok1 else '0', acc2='1' if ok2 else '0', acc1_alt='1' if ok1a else '0',
                       error_class=cls, n_beats=res.get('n_beats', ''),
                       audio_s='%.1f' % res['audio_s'] if 'audio_s' in res else '',
                       seconds='%.1f' % res['seconds'], error=res.get('error', ''))
            rows.append(row)
            print('%-62s %-10s truth %7.2f  essentia %7s  conf %5s  %-10s %s' % (
                r['path'][:62], (r['style'] or '-')[:10], truth_bpm, row['essentia_bpm'] or '-',
                row['confidence'] or '-', cls, row['error'][:60]), flush=True)
    cols = list(rows[0].keys()) if rows else ['path']
    tmp = out + '.tmp'
    with open(tmp, 'w', newline='', encoding='utf-8') as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator='\n')
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out)
    print_table('overall', summarise(rows, lambda r: 'all'))
    print_table('per kind', summarise(rows, lambda r: r['kind']))
    print_table('per style (kind/style)', summarise(rows, lambda r: '%s/%s' % (r['kind'], r['style'] or '-')))
    print_table('per meter', summarise(rows, lambda r: r['meter'] or '?'))
    print('\nwrote %s (%d rows) in %.0f s' % (out, len(rows), time.time() - t0))


if __name__ == '__main__':
    main()
