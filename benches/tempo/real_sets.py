#!/usr/bin/env python3
"""Build DIR/real: real compositions rendered from score/project files shipped
by Debian packages, with the tempo written in those files as the truth.

  real_sets.py DIR [--corpus-tools SHARED_CORPUS_DIR] [--jobs N] [--keep-build]

Called by make-tempo-sets (which installs the Debian tools first and builds
DIR/synthetic with make-corpus).  Sources (see README.md beside this file):

  openmsx    openttd-openmsx   MIDI files; tempo/time signature from the MIDI meta events
  musescore  musescore3-common, musescore-common (2.x demos); rendered by mscore3,
             tempo map from mscore3's own MIDI export (repeats and tempo texts applied)
  lmms       lmms-common demo projects; <head bpm= timesig_*>, no tempo automation
  hydrogen   hydrogen-data demo songs; <bpm>, empty BPM timeline, pattern size -> meter

Kept: one constant tempo (or one tempo for >= 90 % of the piece and >= 95 % of
the excerpt), a tempo that is written in the file (not a player default) and a
readable time signature.  Each piece is trimmed to at most 90 s (30-120 s for
pieces longer than 100 s, else from the first sound), normalised to -1 dBFS
peak, and encoded to FLAC, Ogg Vorbis or MP3 in turn.  Existing files are
never rebuilt.  Writes DIR/meta/real_truth.csv (all rows, same columns as the
shared corpus) and DIR/meta/real_candidates.json (every candidate, kept or
not, with the reason); make-tempo-sets merges the rows into DIR/truth.csv.
"""
import argparse
import csv
import fnmatch
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True

PACKAGES = ['openttd-openmsx', 'lmms-common', 'hydrogen-data', 'musescore3-common', 'musescore-common']
SF2 = '/usr/share/sounds/sf2/FluidR3_GM.sf2'
FORMAT_CYCLE = ['flac16', 'ogg-q5', 'mp3-vbr2', 'ogg-q3', 'mp3-cbr192', 'flac24', 'mp3-vbr4', 'ogg-q7']
COLS = ['path', 'format', 'duration_s', 'sample_rate', 'channels', 'bpm', 'key', 'mode', 'kind',
        'expected_outcome', 'source_license', 'encoding', 'meter', 'swing', 'bpm_alternatives',
        'style', 'lufs_i', 'notes']
QT_ENV = dict(os.environ, QT_QPA_PLATFORM='offscreen', HOME=os.environ.get('HOME', '/root'))


def run(cmd, timeout=1800, env=None, cwd=None):
    r = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError('command failed (rc=%d): %s\n%s' % (
            r.returncode, ' '.join(map(str, cmd)), r.stderr.decode(errors='replace')[-2000:]))
    return r


def log(*a):
    print('[real]', *a, flush=True)


# ----------------------------------------------------------------------------
# MIDI tempo map
# ----------------------------------------------------------------------------

def _vlq(d, i):
    n = 0
    while True:
        b = d[i]
        i += 1
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            return n, i


def midi_map(path):
    """-> dict(div, tempos=[(tick, usec)], sigs=[(tick, num, den)], first, last)"""
    d = open(path, 'rb').read()
    if d[:4] != b'MThd':
        raise ValueError('not a MIDI file')
    hl, fmt, ntr, div = struct.unpack('>IHHH', d[4:14])
    if div & 0x8000:
        raise ValueError('SMPTE time division')
    i = 8 + hl
    tempos, sigs, notes = [], [], []
    for _ in range(ntr):
        while d[i:i + 4] != b'MTrk':
            i += 8 + struct.unpack('>I', d[i + 4:i + 8])[0]
        ln = struct.unpack('>I', d[i + 4:i + 8])[0]
        j, e, t, rs = i + 8, i + 8 + ln, 0, 0
        while j < e:
            dt, j = _vlq(d, j)
            t += dt
            b = d[j]
            if b == 0xFF:
                typ = d[j + 1]
                ln2, k = _vlq(d, j + 2)
                p = d[k:k + ln2]
                j = k + ln2
                if typ == 0x51:
                    tempos.append((t, int.from_bytes(p, 'big')))
                elif typ == 0x58:
                    sigs.append((t, p[0], 2 ** p[1]))
            elif b in (0xF0, 0xF7):
                ln2, k = _vlq(d, j + 1)
                j = k + ln2
            else:
                if b & 0x80:
                    rs = b
                    j += 1
                hi = rs & 0xF0
                if hi in (0xC0, 0xD0):
                    j += 1
                else:
                    if hi == 0x90 and d[j + 1] > 0:
                        notes.append(t)
                    j += 2
        i = e
    notes.sort()
    return dict(div=div, tempos=sorted(tempos), sigs=sorted(sigs),
                first=notes[0] if notes else 0, last=notes[-1] if notes else 0)


def tempo_segments(m):
    """[(t0_s, t1_s, tick0, tick1, bpm, sec_per_tick)] from tick 0 to the last note."""
    div = m['div']
    tm = list(m['tempos']) or [(0, 500000)]
    if tm[0][0] > 0:
        tm = [(0, 500000)] + tm
    segs, s = [], 0.0
    for k, (t, u) in enumerate(tm):
        t1 = tm[k + 1][0] if k + 1 < len(tm) else max(m['last'], t)
        spt = u / div / 1e6
        segs.append((s, s + (t1 - t) * spt, t, t1, round(60e6 / u, 3), spt))
        s += (t1 - t) * spt
    return segs


def tempo_share(segs, a, b):
    """seconds share of each bpm inside [a, b] -> sorted [(share, bpm)]"""
    sh = {}
    for s0, s1, _, _, bpm, _ in segs:
        lo, hi = max(s0, a), min(s1, b)
        if hi > lo:
            sh[bpm] = sh.get(bpm, 0.0) + hi - lo
    tot = sum(sh.values()) or 1.0
    return sorted(((v / tot, k) for k, v in sh.items()), reverse=True)


def tick_to_s(segs, tick):
    for s0, s1, t0, t1, bpm, spt in segs:
        if tick <= t1:
            return s0 + (tick - t0) * spt
    s0, s1, t0, t1, bpm, spt = segs[-1]
    return s0 + (tick - t0) * spt


def dominant_sig(m, segs):
    """time signature that holds for most of the music (by ticks)"""
    if not m['sigs']:
        return None
    sh = {}
    sigs = m['sigs']
    for k, (t, n, d) in enumerate(sigs):
        t1 = sigs[k + 1][0] if k + 1 < len(sigs) else m['last']
        lo, hi = max(t, m['first']), min(t1, m['last'])
        if hi > lo:
            sh[(n, d)] = sh.get((n, d), 0) + hi - lo
    if not sh:
        n, d = sigs[0][1], sigs[0][2]
        return n, d, 1.0
    (n, d), v = max(sh.items(), key=lambda kv: kv[1])
    return n, d, v / float(sum(sh.values()))


# ----------------------------------------------------------------------------
# licences from debian/copyright (DEP-5), matched on the tail of the path
# ----------------------------------------------------------------------------

def dep5_licence(copyright_text, installed_path):
    stanzas, cur = [], None
    for line in copyright_text.splitlines():
        if line.startswith('Files:'):
            cur = dict(files=line[6:].split(), lic=None)
            stanzas.append(cur)
        elif cur is not None and line.startswith(' ') and cur['lic'] is None and 'files' in cur \
                and not any(k in cur for k in ('copyright',)):
            cur['files'] += line.split()
        elif cur is not None and line.startswith('Copyright:'):
            cur['copyright'] = True
        elif cur is not None and line.startswith('License:') and cur['lic'] is None:
            cur['lic'] = line[8:].strip()
        elif not line.strip():
            cur = None
    best = None
    for st in stanzas:
        for pat in st['files']:
            if pat == '*':
                if best is None:
                    best = st['lic']
                continue
            comps = pat.split('/')
            for k in range(len(comps) - 1):
                tail = '/'.join(comps[k:])
                if tail.count('/') >= 1 and fnmatch.fnmatch(installed_path, '*/' + tail):
                    best = st['lic']
                    break
            else:
                if len(comps) == 1 and fnmatch.fnmatch(os.path.basename(installed_path), pat):
                    best = st['lic']
    return best or 'see copyright file'


# ----------------------------------------------------------------------------
# builder
# ----------------------------------------------------------------------------

class Real:
    def __init__(self, a):
        self.a = a
        self.root = os.path.abspath(a.target)
        self.build = os.path.join(self.root, '.build-real')   # make-corpus removes .build
        self.meta = os.path.join(self.root, 'meta')
        self.rd = os.path.join(self.root, 'real')
        for d in (self.build, self.meta, self.rd, os.path.join(self.meta, 'licenses')):
            os.makedirs(d, exist_ok=True)
        sys.path.insert(0, a.corpus_tools)
        import corpus_gen   # encode(), probe(), loudness_and_duration(), encoding_label()
        self.cg = corpus_gen
        self.versions = {}
        self.cands = []

    # --- packages -----------------------------------------------------------
    def fetch(self):
        debdir = os.path.join(self.build, 'debs')
        os.makedirs(debdir, exist_ok=True)

        def deb_of(pk):
            for f in sorted(os.listdir(debdir)):
                if f.startswith(pk + '_') and f.endswith('.deb'):
                    return os.path.join(debdir, f)
        missing = [pk for pk in PACKAGES if not deb_of(pk)]
        if missing:
            log('downloading', ' '.join(missing))
            cmd = ['apt-get', 'download', '-q', '-o', 'APT::Sandbox::User=root'] + missing
            r = subprocess.run(cmd, cwd=debdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if r.returncode:
                run(['apt-get', 'update', '-q'])
                run(cmd, cwd=debdir)
        self.x = os.path.join(self.build, 'x')
        for pk in PACKAGES:
            deb = deb_of(pk)
            self.versions[pk] = run(['dpkg-deb', '-f', deb, 'Version']).stdout.decode().strip()
            dst = os.path.join(self.x, pk)
            if not os.path.isdir(dst):
                os.makedirs(dst + '.tmp', exist_ok=True)
                run(['dpkg-deb', '-x', deb, dst + '.tmp'])
                os.rename(dst + '.tmp', dst)
            cp = glob.glob(os.path.join(dst, 'usr/share/doc/%s/copyright' % pk))
            if cp:
                shutil.copyfile(cp[0], os.path.join(self.meta, 'licenses', pk + '.copyright'))
        with open(os.path.join(self.meta, 'real_packages.json'), 'w') as f:
            json.dump(self.versions, f, indent=1, sort_keys=True)

    def licence(self, pk, inner):
        cp = os.path.join(self.meta, 'licenses', pk + '.copyright')
        txt = open(cp, encoding='utf-8', errors='replace').read() if os.path.exists(cp) else ''
        return dep5_licence(txt, '/' + inner)

    def cand(self, source, pk, inner, name, **kw):
        c = dict(source=source, package=pk, inner=inner, name=name, keep=False, reason='')
        c.update(kw)
        self.cands.append(c)
        return c

    # --- candidates ---------------------------------------------------------
    def scan_openmsx(self):
        pk = 'openttd-openmsx'
        base = os.path.join(self.x, pk)
        for p in sorted(glob.glob(os.path.join(base, 'usr/share/games/openttd/baseset/openmsx/*.mid'))):
            inner = os.path.relpath(p, base)
            c = self.cand('openmsx', pk, inner, 'openmsx_' + os.path.basename(p)[:-4], src=p, render='fluidsynth')
            self.judge_midi(c, p)

    def scan_musescore(self):
        for pk, pat in (('musescore3-common', 'usr/share/mscore3-3.2/demos/*.msc[xz]'),
                        ('musescore-common', 'usr/share/mscore-2.3/demos/*.mscz')):
            base = os.path.join(self.x, pk)
            for p in sorted(glob.glob(os.path.join(base, pat))):
                inner = os.path.relpath(p, base)
                stem = os.path.splitext(os.path.basename(p))[0]
                ver = '3' if pk == 'musescore3-common' else '2'
                c = self.cand('musescore', pk, inner, 'musescore%s_%s' % (ver, stem), src=p, render='mscore3')
                if p.endswith('.mscz'):
                    with zipfile.ZipFile(p) as z:
                        xml = b''.join(z.read(n) for n in z.namelist() if n.endswith('.mscx')).decode('utf-8', 'replace')
                else:
                    xml = open(p, encoding='utf-8', errors='replace').read()
                if '<tempo>' not in xml:
                    c['reason'] = 'no tempo marking in the score (MuseScore would play its default 120)'
                    continue
                mid = os.path.join(self.build, c['name'] + '.score.mid')
                if not os.path.exists(mid):
                    try:
                        run(['mscore3', '-o', mid + '.tmp.mid', p], env=QT_ENV, timeout=600)
                        os.replace(mid + '.tmp.mid', mid)
                    except Exception as ex:
                        c['reason'] = 'mscore3 MIDI export failed: %s' % str(ex)[:200]
                        continue
                self.judge_midi(c, mid)
                c['tempo_from'] = "mscore3's MIDI export of the score (tempo texts and repeats applied)"

    def judge_midi(self, c, mid):
        try:
            m = midi_map(mid)
        except Exception as ex:
            c['reason'] = 'unreadable MIDI: %s' % ex
            return
        if not m['tempos']:
            c['reason'] = 'no tempo event (player default 120 only)'
            return
        segs = tempo_segments(m)
        first_s, last_s = tick_to_s(segs, m['first']), tick_to_s(segs, m['last'])
        whole = tempo_share(segs, first_s, last_s)
        c['tempo_map'] = ' '.join('%g:%.0f%%' % (b, f * 100) for f, b in whole[:4])
        c['n_tempo_events'] = len(m['tempos'])
        sig = dominant_sig(m, segs)
        if sig is None:
            c['reason'] = 'no time-signature event'
            return
        n, d, sshare = sig
        c['meter'] = '%d/%d' % (n, d)
        if sshare < 0.9 or n < 2:
            c['reason'] = 'no clearly dominant time signature (%s for %.0f%%)' % (c['meter'], sshare * 100)
            return
        if whole[0][0] < 0.9:
            c['reason'] = 'tempo changes: %s' % c['tempo_map']
            return
        c['bpm'] = whole[0][1]
        c['music_s'] = (first_s, last_s)
        c['segs'] = segs
        c['keep'] = True

    def scan_lmms(self):
        pk = 'lmms-common'
        base = os.path.join(self.x, pk)
        for p in sorted(glob.glob(os.path.join(base, 'usr/share/lmms/projects/**/*.mmp*'), recursive=True)):
            inner = os.path.relpath(p, base)
            stem = os.path.splitext(os.path.basename(p))[0]
            slug = re.sub(r'[^A-Za-z0-9_-]+', '', stem)
            c = self.cand('lmms', pk, inner, 'lmms_' + slug, src=p, render='lmms')
            d = open(p, 'rb').read()
            if p.endswith('.mmpz'):
                d = zlib.decompress(d[4:])
            s = d.decode('utf-8', 'replace')
            h = re.search(r'<head\b([^>]*?)(/?)>', s)
            if not h:
                c['reason'] = 'no <head>'
                continue
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', h.group(1)))
            body = '' if h.group(2) else s[h.end():s.find('</head>', h.end())]
            if re.search(r'<(bpm|timesig_numerator|timesig_denominator)\b', body):
                c['reason'] = 'tempo or time signature is automated (child element in <head>)'
                continue
            try:
                bpm = float(attrs['bpm'])
                n, dd = int(attrs.get('timesig_numerator', 4)), int(attrs.get('timesig_denominator', 4))
            except (KeyError, ValueError):
                c['reason'] = 'no bpm attribute'
                continue
            c['meter'] = '%d/%d' % (n, dd)
            c['tempo_map'] = 'bpm=%g (constant: no tempo automation)' % bpm
            if n < 2 or dd not in (2, 4, 8, 16):
                c['reason'] = 'time signature %d/%d does not say the meter' % (n, dd)
                continue
            c['bpm'] = bpm
            c['keep'] = True

    def scan_hydrogen(self):
        pk = 'hydrogen-data'
        base = os.path.join(self.x, pk)
        for p in sorted(glob.glob(os.path.join(base, 'usr/share/hydrogen/data/demo_songs/*.h2song'))):
            inner = os.path.relpath(p, base)
            stem = os.path.splitext(os.path.basename(p))[0]
            c = self.cand('hydrogen', pk, inner, 'hydrogen_' + stem, src=p, render='h2cli')
            s = open(p, encoding='utf-8', errors='replace').read()
            mb = re.search(r'<bpm>([0-9.]+)</bpm>', s)
            if not mb:
                c['reason'] = 'no <bpm>'
                continue
            if re.search(r'<BPMTimeLine>\s*<newBPM>', s) or '<newBPM>' in s:
                c['reason'] = 'tempo changes on the BPM timeline'
                continue
            if re.search(r'<isTimelineActivated>true', s):
                c['reason'] = 'timeline activated'
                continue
            # pattern lengths: size is in ticks (48 per quarter); the song plays the pattern list
            sizes = re.findall(r'<pattern>\s*<name>[^<]*</name>.*?<size>(\d+)</size>\s*<denominator>(\d+)</denominator>', s, re.S)
            used = self.h2_used_patterns(s)
            sz = {}
            names = re.findall(r'<pattern>\s*<name>([^<]*)</name>.*?<size>(\d+)</size>\s*<denominator>(\d+)</denominator>', s, re.S)
            for nm, size, den in names:
                k = (int(size), int(den))
                sz[k] = sz.get(k, 0) + used.get(nm, 0)
            if not sz or not sum(sz.values()):
                sz = {(int(a), int(b)): 1 for a, b in sizes}
            (size, den), v = max(sz.items(), key=lambda kv: kv[1])
            if v / float(sum(sz.values())) < 0.9:
                c['reason'] = 'patterns of several lengths: %s' % sz
                continue
            num = size * den / 192.0
            if abs(num - round(num)) > 1e-6:
                c['reason'] = 'pattern size %d/%d is no whole bar' % (size, den)
                continue
            c['meter'] = '%d/%d' % (round(num), den)
            c['bpm'] = float(mb.group(1))
            sw = re.search(r'<swing_factor>([0-9.]+)</swing_factor>', s)
            c['swing_factor'] = float(sw.group(1)) if sw else 0.0
            c['tempo_map'] = '<bpm>%s, empty BPM timeline' % mb.group(1)
            c['keep'] = True

    @staticmethod
    def h2_used_patterns(s):
        seq = s[s.find('<patternSequence>'):s.find('</patternSequence>')]
        used = {}
        for nm in re.findall(r'<patternID>([^<]*)</patternID>', seq):
            used[nm] = used.get(nm, 0) + 1
        return used

    # --- rendering ------------------------------------------------------------
    def raw_path(self, c):
        return os.path.join(self.build, c['name'] + '.raw.wav')

    def render(self, c):
        raw = self.raw_path(c)
        if os.path.exists(raw):
            return raw
        tmp = raw + '.tmp.wav'
        if c['render'] == 'fluidsynth':
            run(['fluidsynth', '-ni', '-q', '-g', '0.45', '-r', '44100', '-o', 'synth.sample-rate=44100',
                 '-o', 'synth.cpu-cores=1', '-T', 'wav', '-O', 'float', '-F', tmp, SF2, c['src']])
        elif c['render'] == 'mscore3':
            run(['mscore3', '-o', tmp, c['src']], env=QT_ENV)
        elif c['render'] == 'lmms':
            run(['lmms', '--allowroot', 'render', c['src'], '-f', 'wav', '-o', tmp], env=QT_ENV, timeout=3600,
                cwd=self.build)
        elif c['render'] == 'h2cli':
            run(['h2cli', '-s', c['src'], '-r', '44100', '-b', '16', '-o', tmp], timeout=3600, cwd=self.build)
        os.replace(tmp, raw)
        return raw

    def sound_span(self, wav):
        """first/last time (s) the signal is within 45 dB of its peak (8 kHz mono decode)"""
        import numpy as np
        r = subprocess.run(['ffmpeg', '-nostdin', '-v', 'error', '-i', wav, '-ac', '1', '-ar', '8000',
                            '-f', 'f32le', '-'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        x = np.abs(np.frombuffer(r.stdout, dtype=np.float32))
        if not len(x) or x.max() <= 0:
            return 0.0, 0.0
        idx = np.nonzero(x > x.max() * 10 ** (-45 / 20.0))[0]
        return idx[0] / 8000.0, idx[-1] / 8000.0

    def make(self, c, fmt):
        ext = self.cg.EXT[self.cg.parse_format(fmt)['codec']]
        dst = os.path.join(self.rd, '%s.%s' % (c['name'], ext))
        c['path'] = os.path.relpath(dst, self.root)
        c['fmt'] = fmt
        exj = os.path.join(self.meta, 'real_excerpts.json')
        old = json.load(open(exj)).get(c['name']) if os.path.exists(exj) else None
        if old and old.get('reject'):
            c['keep'], c['reason'] = False, old['reject']
            return
        if os.path.exists(dst) and old:
            c.update(old)
            return
        raw = self.render(c)
        s0, s1 = self.sound_span(raw)
        if 'segs' in c:
            # MIDI-timed sources: keep to the longest stretch at the dominant tempo
            runs, cur = [], None
            for g in c['segs']:
                if g[4] == c['bpm'] and cur and abs(cur[1] - g[0]) < 1e-6:
                    cur[1] = g[1]
                elif g[4] == c['bpm']:
                    cur = [g[0], g[1]]
                    runs.append(cur)
                else:
                    cur = None
            lo, hi = max(runs, key=lambda r: min(r[1], s1) - max(r[0], s0))
            if hi >= c['segs'][-1][1] - 1e-6:     # the run lasts to the last note: keep the tail
                hi = s1
            s0, s1 = max(s0, lo), min(s1, hi)
        span = s1 - s0
        if span < 20:
            c['keep'], c['reason'], c['excerpt_reject'] = False, 'renders to only %.1f s of sound' % span, True
            return
        if span <= 100:
            a, b = s0, s0 + min(span, 90.0)
        else:
            a, b = s0 + 30.0, s0 + 120.0
        c['excerpt'] = (round(a, 3), round(b, 3))
        if 'segs' in c:      # MIDI-timed sources: tempo inside the excerpt
            sh = tempo_share(c['segs'], a, b)
            c['excerpt_tempo'] = ' '.join('%g:%.0f%%' % (bb, f * 100) for f, bb in sh[:3])
            if sh[0][1] != c['bpm'] or sh[0][0] < 0.95:
                c['keep'], c['reason'] = False, 'excerpt tempo not constant: %s' % c['excerpt_tempo']
                c['excerpt_reject'] = True
                return
        master = os.path.join(self.build, c['name'] + '.master.wav')
        run(['sox', '-R', '-V1', raw, '-e', 'floating-point', '-b', '32', '-r', '44100', '-c', '2', master,
             'trim', '%.3f' % a, '%.3f' % (b - a), 'gain', '-n', '-1', 'fade', 't', '0.3', '-0', '1.0'])
        self.cg.encode(master, dst, fmt, c['name'], self.build, album='playlista tempo set (real)')
        os.remove(master)
        if not self.a.keep_build:
            os.remove(raw)

    def rows(self):
        out = []
        for c in self.cands:
            if not c['keep'] or not os.path.exists(os.path.join(self.root, c.get('path', '-'))):
                continue
            pk = c['package']
            lic = self.licence(pk, c['inner'])
            pr = self.cg.probe(os.path.join(self.root, c['path']))
            lufs, dur = self.cg.loudness_and_duration(os.path.join(self.root, c['path']))
            d = self.cg.parse_format(c['fmt'])
            notes = ['package %s %s' % (pk, self.versions.get(pk, '?')), 'file /%s' % c['inner'],
                     'licence %s' % lic, 'tempo %s' % c.get('tempo_map', '')]
            if c.get('tempo_from'):
                notes.append('tempo map from ' + c['tempo_from'])
            notes.append('excerpt %.1f-%.1f s of the %s render' % (c['excerpt'][0], c['excerpt'][1], c['render']))
            if c.get('excerpt_tempo'):
                notes.append('excerpt tempo %s' % c['excerpt_tempo'])
            if c.get('swing_factor'):
                notes.append('hydrogen swing_factor=%g' % c['swing_factor'])
            out.append(dict(path=c['path'], format=self.cg.FORMAT_LABEL[d['codec']], duration_s=dur,
                            sample_rate=pr.get('sample_rate'), channels=pr.get('channels'),
                            bpm=('%g' % c['bpm']), key='', mode='', kind='real', expected_outcome='ok',
                            source_license='Debian package %s %s, /%s; license %s (see meta/licenses/%s.copyright)'
                                           % (pk, self.versions.get(pk, '?'), c['inner'], lic, pk),
                            encoding=self.cg.encoding_label(d), meter=c.get('meter', ''), swing='',
                            bpm_alternatives='', style=c['source'], lufs_i=lufs, notes='; '.join(notes)))
        return sorted(out, key=lambda r: r['path'])

    def main(self):
        self.fetch()
        self.scan_openmsx()
        self.scan_musescore()
        self.scan_lmms()
        self.scan_hydrogen()
        kept = [c for c in self.cands if c['keep']]
        log('%d candidates, %d pass the tempo/meter checks' % (len(self.cands), len(kept)))
        if self.a.scan_only:
            for c in self.cands:
                print('%-5s %-42s %-8s %-5s %-40s %s' % ('KEEP' if c['keep'] else '-', c['name'], c.get('bpm', ''),
                                                        c.get('meter', ''), c.get('tempo_map', '')[:40], c['reason']))
            return
        for i, c in enumerate(sorted(kept, key=lambda c: c['name'])):
            c['fmt_planned'] = FORMAT_CYCLE[i % len(FORMAT_CYCLE)]
        # hydrogen's exporter runs in real time with little CPU: run those beside the rest
        slow = [c for c in kept if c['render'] == 'h2cli']
        rest = [c for c in kept if c['render'] != 'h2cli']
        errs = []

        def one(c):
            try:
                self.make(c, c['fmt_planned'])
                if c['keep']:
                    log('ok', c['path'])
            except Exception as ex:
                c['keep'], c['reason'] = False, 'render/encode failed: %s' % str(ex)[:300]
                errs.append(c['name'])
                log('FAILED', c['name'], str(ex)[:300])
        with ThreadPoolExecutor(max_workers=max(1, len(slow))) as p1, \
                ThreadPoolExecutor(max_workers=self.a.jobs) as p2:
            fs = [p1.submit(one, c) for c in slow] + [p2.submit(one, c) for c in rest]
            for f in fs:
                f.result()
        ex = {c['name']: {k: c[k] for k in ('excerpt', 'excerpt_tempo') if k in c}
              for c in self.cands if c['keep'] and 'excerpt' in c}
        ex.update({c['name']: dict(reject=c['reason']) for c in self.cands
                   if not c['keep'] and c.get('excerpt_reject')})
        old = os.path.join(self.meta, 'real_excerpts.json')
        if os.path.exists(old):
            prev = json.load(open(old))
            prev.update(ex)
            ex = prev
        with open(old, 'w') as f:
            json.dump(ex, f, indent=1, sort_keys=True)
        rows = self.rows()
        with open(os.path.join(self.meta, 'real_candidates.json'), 'w') as f:
            json.dump([{k: v for k, v in c.items() if k not in ('segs', 'src')} for c in self.cands], f, indent=1)
        tmp = os.path.join(self.meta, '.tmp-real_truth.csv')
        with open(tmp, 'w', newline='', encoding='utf-8') as f:
            w = csv.DictWriter(f, fieldnames=COLS, lineterminator='\n')
            w.writeheader()
            for r in rows:
                w.writerow({k: ('' if r.get(k) is None else r[k]) for k in COLS})
        os.replace(tmp, os.path.join(self.meta, 'real_truth.csv'))
        by = {}
        for r in rows:
            by[r['style']] = by.get(r['style'], 0) + 1
        log('real rows: %d (%s); rejected candidates: %d; failures: %d' % (
            len(rows), ', '.join('%s=%d' % kv for kv in sorted(by.items())),
            sum(1 for c in self.cands if not c['keep']), len(errs)))
        if not self.a.keep_build:
            shutil.rmtree(self.build, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('target')
    ap.add_argument('--corpus-tools', required=True, help='folder with corpus_gen.py (shared/corpus)')
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--keep-build', action='store_true')
    ap.add_argument('--scan-only', action='store_true', help='list the candidates and why each is kept or not')
    Real(ap.parse_args()).main()


if __name__ == '__main__':
    main()
