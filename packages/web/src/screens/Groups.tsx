import { useEffect, useState, type FormEvent } from 'react';
import { GroupViewModel, type MemberRow } from '@magpie/sdk';
import { useOwnedVM, useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { chatPath, navigate } from '../router.ts';
import { Avatar, Empty, Header, Notice } from './common.tsx';

export function NewGroupScreen(props: { session: Session }) {
  const { session } = props;
  const contacts = useVM(session.contacts);
  const [name, setName] = useState('');
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const toggle = (id: string) => {
    const next = new Set(picked);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setPicked(next);
  };

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const g = await GroupViewModel.create(session, { name: name.trim(), members: [...picked] });
      navigate(chatPath(g.conv), { replace: true });
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <section className="new-group" aria-label="New group" data-testid="new-group-screen">
      <Header title="New group" back="/" level={2} />
      <form className="form" onSubmit={create}>
        <label>
          Group name
          <input required maxLength={64} value={name} onChange={(e) => setName(e.target.value)} autoFocus data-testid="group-name" />
        </label>
        <fieldset>
          <legend>Members ({picked.size} selected)</legend>
          {contacts.friends.length === 0 && <Empty>Add friends first; you can also invite people later.</Empty>}
          <ul className="pick-list">
            {contacts.friends.map((f) => (
              <li key={f.user.id}>
                <label className="check">
                  <input type="checkbox" checked={picked.has(f.user.id)} onChange={() => toggle(f.user.id)} data-testid="pick-member" data-user={f.user.username} />
                  <Avatar name={f.user.nickname || f.user.username} id={f.user.id} size={32} />
                  {f.user.nickname || f.user.username}
                </label>
              </li>
            ))}
          </ul>
        </fieldset>
        <Notice error={error} />
        <button type="submit" className="primary" disabled={busy || !name.trim()} data-testid="create-group">
          {busy ? 'Creating…' : 'Create group'}
        </button>
      </form>
    </section>
  );
}

const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: '' } as const;

function MemberActions(props: { vm: GroupViewModel; m: MemberRow }) {
  const { vm, m } = props;
  if (!m.canKick && !m.canMute && !m.canSetRole) return null;
  return (
    <span className="row-actions">
      {m.canSetRole && m.role !== 'owner' && (
        <button type="button" className="small" onClick={() => void vm.setRole(m.userId, m.role === 'admin' ? 'member' : 'admin')} data-testid="toggle-admin">
          {m.role === 'admin' ? 'Remove admin' : 'Make admin'}
        </button>
      )}
      {m.canMute && (
        <button type="button" className="small" onClick={() => void vm.mute(m.userId, m.muted ? 0 : 3_600_000)} data-testid="toggle-mute">
          {m.muted ? 'Unmute' : 'Mute 1 h'}
        </button>
      )}
      {m.canKick && (
        <button type="button" className="small danger" onClick={() => confirm(`Remove ${m.name} from the group?`) && void vm.kick(m.userId)} data-testid="kick">
          Remove
        </button>
      )}
    </span>
  );
}

export function GroupInfoScreen(props: { session: Session; conv: string }) {
  const { session, conv } = props;
  const vm = useOwnedVM(() => new GroupViewModel({ client: session.client, groups: session.groups, directory: session.directory }, conv), conv);
  if (!vm) return <section className="group-info" aria-busy="true" />;
  return <GroupInfo session={session} vm={vm} />;
}

function GroupInfo(props: { session: Session; vm: GroupViewModel }) {
  const { session, vm } = props;
  const s = useVM(vm);
  const contacts = useVM(session.contacts);
  const [announcement, setAnnouncement] = useState<string | null>(null);
  const [name, setName] = useState<string | null>(null);
  const [invite, setInvite] = useState('');
  const info = s.info;
  // A new join request (seen by the badge checker) shows here at once.
  const pending = useVM(session.joinRequests).byConv[s.conv] ?? 0;
  useEffect(() => {
    if (pending !== s.requests.length) void vm.reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [pending, vm]);
  const memberIds = new Set(s.members.map((m) => m.userId));
  const invitable = contacts.friends.filter((f) => !memberIds.has(f.user.id));

  return (
    <section className="group-info" aria-label="Group info" data-testid="group-info-screen">
      <Header title={info?.name ?? 'Group'} back={chatPath(s.conv)} subtitle={info ? `${info.memberCount} members${info.kind === 'super' ? ' · super group' : ''}` : undefined} level={2} />
      <div className="scroll">
        <Notice error={s.error} notice={s.notice} />
        {s.loading && <p className="muted center">Loading…</p>}
        {info && (
          <>
            {info.dismissed && <p className="notice">This group was dismissed. It is read-only.</p>}
            <section className="card" aria-labelledby="ann-title">
              <h3 id="ann-title">Announcement</h3>
              {s.canManage && announcement !== null ? (
                <form
                  className="form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void vm.setAnnouncement(announcement).then(() => setAnnouncement(null));
                  }}
                >
                  <label className="sr-only" htmlFor="ann">
                    Announcement
                  </label>
                  <textarea id="ann" rows={3} maxLength={4000} value={announcement} onChange={(e) => setAnnouncement(e.target.value)} autoFocus data-testid="announcement-input" />
                  <div className="row-actions">
                    <button type="submit" className="primary small" disabled={s.busy} data-testid="save-announcement">
                      Save
                    </button>
                    <button type="button" className="small" onClick={() => setAnnouncement(null)}>
                      Cancel
                    </button>
                  </div>
                </form>
              ) : (
                <>
                  <p className="announcement" data-testid="announcement">
                    {info.announcement || <span className="muted">No announcement.</span>}
                  </p>
                  {s.canManage && (
                    <button type="button" className="small" onClick={() => setAnnouncement(info.announcement)} data-testid="edit-announcement">
                      Edit announcement
                    </button>
                  )}
                </>
              )}
            </section>
            {s.canManage && (
              <section className="card" aria-labelledby="settings-title">
                <h3 id="settings-title">Group settings</h3>
                {name !== null ? (
                  <form
                    className="inline-form"
                    onSubmit={(e) => {
                      e.preventDefault();
                      void vm.rename(name.trim()).then(() => setName(null));
                    }}
                  >
                    <label className="sr-only" htmlFor="gname">
                      Group name
                    </label>
                    <input id="gname" value={name} maxLength={64} required onChange={(e) => setName(e.target.value)} autoFocus />
                    <button type="submit" className="primary small">
                      Save
                    </button>
                  </form>
                ) : (
                  <button type="button" className="small" onClick={() => setName(info.name)}>
                    Rename group
                  </button>
                )}
                <label className="check">
                  <input type="checkbox" checked={info.muteAll} onChange={(e) => void vm.update({ muteAll: e.target.checked })} /> Only admins can send messages
                </label>
                <label className="check">
                  <input type="checkbox" checked={info.joinPolicy === 'open'} onChange={(e) => void vm.update({ joinPolicy: e.target.checked ? 'open' : 'approval' })} /> Anyone can join without approval
                </label>
              </section>
            )}
            {s.requests.length > 0 && (
              <section className="card" aria-labelledby="req-title">
                <h3 id="req-title">Join requests</h3>
                <ul className="rows">
                  {s.requests.map((r) => (
                    <li key={r.userId} className="row static" data-testid="join-request">
                      <span className="row-main">
                        <span className="row-title">{session.directory.userName(r.userId)}</span>
                        <span className="row-preview">{r.inviter ? `Invited by ${session.directory.userName(r.inviter)}` : r.message || 'Wants to join'}</span>
                      </span>
                      <span className="row-actions">
                        <button type="button" className="primary small" onClick={() => void vm.approve(r.userId).then(() => session.joinRequests.check(s.conv))} data-testid="approve-request">
                          Approve
                        </button>
                        <button type="button" className="small" onClick={() => void vm.reject(r.userId).then(() => session.joinRequests.check(s.conv))}>
                          Decline
                        </button>
                      </span>
                    </li>
                  ))}
                </ul>
              </section>
            )}
            {!info.dismissed && invitable.length > 0 && (
              <section className="card" aria-labelledby="inv-title">
                <h3 id="inv-title">Invite friends</h3>
                <form
                  className="inline-form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    if (invite) void vm.invite([invite]).then(() => setInvite(''));
                  }}
                >
                  <label className="sr-only" htmlFor="invite">
                    Friend to invite
                  </label>
                  <select id="invite" value={invite} onChange={(e) => setInvite(e.target.value)} data-testid="invite-select">
                    <option value="">Choose a friend…</option>
                    {invitable.map((f) => (
                      <option key={f.user.id} value={f.user.id}>
                        {f.user.nickname || f.user.username}
                      </option>
                    ))}
                  </select>
                  <button type="submit" className="primary small" disabled={!invite || s.busy} data-testid="invite">
                    Invite
                  </button>
                </form>
              </section>
            )}
            <section className="card" aria-labelledby="mem-title">
              <h3 id="mem-title">Members</h3>
              <ul className="rows">
                {s.members.map((m) => (
                  <li key={m.userId} className="row static" data-testid="member" data-user={m.username} data-role={m.role}>
                    <Avatar name={m.name} id={m.userId} size={32} />
                    <span className="row-main">
                      <span className="row-title">
                        {m.name}
                        {m.self && <span className="muted"> (you)</span>}
                      </span>
                      <span className="row-preview">
                        {[ROLE_LABEL[m.role], m.muted ? 'muted' : ''].filter(Boolean).join(' · ')}
                      </span>
                    </span>
                    <MemberActions vm={vm} m={m} />
                  </li>
                ))}
              </ul>
            </section>
            {!info.dismissed && s.myRole && (
              <section className="card danger-zone">
                {s.myRole !== 'owner' ? (
                  <button type="button" className="danger" onClick={() => confirm('Leave this group?') && void vm.leave().then(() => navigate('/'))}>
                    Leave group
                  </button>
                ) : (
                  <button type="button" className="danger" onClick={() => confirm('Dismiss this group for everyone? It becomes read-only.') && void vm.dismiss()}>
                    Dismiss group
                  </button>
                )}
              </section>
            )}
          </>
        )}
      </div>
    </section>
  );
}
