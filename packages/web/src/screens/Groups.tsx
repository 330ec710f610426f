import { useReceiptsTick } from './Receipts.tsx';
import type { NotifyLevelName } from '@magpie/sdk';
import { useEffect, useState, type FormEvent } from 'react';
import { GroupViewModel, type MemberRow } from '@magpie/sdk';
import { useOwnedVM, useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { chatPath, navigate } from '../router.ts';
import { Avatar, Empty, Header, Notice } from './common.tsx';
import { useTranslation } from 'react-i18next';
import { sdkText } from '../i18n/sdk-text.ts';

export function NewGroupScreen(props: { session: Session }) {
  const { session } = props;
  const { t } = useTranslation();
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
    <section className="new-group" aria-label={t('groups.newTitle')} data-testid="new-group-screen">
      <Header title={t('groups.newTitle')} back="/" level={2} />
      <form className="form" onSubmit={create}>
        <label>
          {t('groups.name')}
          <input required maxLength={64} value={name} onChange={(e) => setName(e.target.value)} autoFocus data-testid="group-name" />
        </label>
        <fieldset>
          <legend>{t('groups.members', { count: picked.size })}</legend>
          {contacts.friends.length === 0 && <Empty>{t('groups.addFriendsFirst')}</Empty>}
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
          {busy ? t('groups.creating') : t('groups.create')}
        </button>
      </form>
    </section>
  );
}


function MemberActions(props: { vm: GroupViewModel; m: MemberRow }) {
  const { vm, m } = props;
  const { t } = useTranslation();
  if (!m.canKick && !m.canMute && !m.canSetRole) return null;
  return (
    <span className="row-actions">
      {m.canSetRole && m.role !== 'owner' && (
        <button type="button" className="small" onClick={() => void vm.setRole(m.userId, m.role === 'admin' ? 'member' : 'admin')} data-testid="toggle-admin">
          {m.role === 'admin' ? t('groups.removeAdmin') : t('groups.makeAdmin')}
        </button>
      )}
      {m.canMute && (
        <button type="button" className="small" onClick={() => void vm.mute(m.userId, m.muted ? 0 : 3_600_000)} data-testid="toggle-mute">
          {m.muted ? t('groups.unmute') : t('groups.mute1h')}
        </button>
      )}
      {m.canKick && (
        <button type="button" className="small danger" onClick={() => confirm(t('groups.confirmRemove', { name: m.name })) && void vm.kick(m.userId)} data-testid="kick">
          {t('groups.remove')}
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
  const { t } = useTranslation();
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
    <section className="group-info" aria-label={t('groups.infoLabel')} data-testid="group-info-screen">
      <Header title={info?.name ?? t('groups.group')} back={chatPath(s.conv)} subtitle={info ? t(info.kind === 'super' ? 'groups.superGroup' : 'groups.memberCount', { count: info.memberCount }) : undefined} level={2} />
      <div className="scroll">
        <Notice error={s.error} notice={sdkText(s.notice)} />
        {s.loading && <p className="muted center">{t('app.loading')}</p>}
        {info && (
          <>
            {info.dismissed && <p className="notice">{t('groups.dismissedNote')}</p>}
            <NotifyLevel session={session} conv={s.conv} superGroup={info.kind === 'super'} />
            <section className="card" aria-labelledby="ann-title">
              <h3 id="ann-title">{t('groups.announcement')}</h3>
              {s.canManage && announcement !== null ? (
                <form
                  className="form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void vm.setAnnouncement(announcement).then(() => setAnnouncement(null));
                  }}
                >
                  <label className="sr-only" htmlFor="ann">
                    {t('groups.announcement')}
                  </label>
                  <textarea id="ann" rows={3} maxLength={4000} value={announcement} onChange={(e) => setAnnouncement(e.target.value)} autoFocus data-testid="announcement-input" />
                  <div className="row-actions">
                    <button type="submit" className="primary small" disabled={s.busy} data-testid="save-announcement">
                      {t('app.save')}
                    </button>
                    <button type="button" className="small" onClick={() => setAnnouncement(null)}>
                      {t('app.cancel')}
                    </button>
                  </div>
                </form>
              ) : (
                <>
                  <p className="announcement" data-testid="announcement">
                    {info.announcement || <span className="muted">{t('groups.noAnnouncement')}</span>}
                  </p>
                  {s.canManage && (
                    <button type="button" className="small" onClick={() => setAnnouncement(info.announcement)} data-testid="edit-announcement">
                      {t('groups.editAnnouncement')}
                    </button>
                  )}
                </>
              )}
            </section>
            {s.canManage && (
              <section className="card" aria-labelledby="settings-title">
                <h3 id="settings-title">{t('groups.settings')}</h3>
                {name !== null ? (
                  <form
                    className="inline-form"
                    onSubmit={(e) => {
                      e.preventDefault();
                      void vm.rename(name.trim()).then(() => setName(null));
                    }}
                  >
                    <label className="sr-only" htmlFor="gname">
                      {t('groups.name')}
                    </label>
                    <input id="gname" value={name} maxLength={64} required onChange={(e) => setName(e.target.value)} autoFocus />
                    <button type="submit" className="primary small">
                      {t('app.save')}
                    </button>
                  </form>
                ) : (
                  <button type="button" className="small" onClick={() => setName(info.name)}>
                    {t('groups.rename')}
                  </button>
                )}
                <label className="check">
                  <input type="checkbox" checked={info.muteAll} onChange={(e) => void vm.update({ muteAll: e.target.checked })} /> {t('groups.onlyAdmins')}
                </label>
                <label className="check">
                  <input type="checkbox" checked={info.joinPolicy === 'open'} onChange={(e) => void vm.update({ joinPolicy: e.target.checked ? 'open' : 'approval' })} /> {t('groups.openJoin')}
                </label>
              </section>
            )}
            {s.requests.length > 0 && (
              <section className="card" aria-labelledby="req-title">
                <h3 id="req-title">{t('groups.joinRequests')}</h3>
                <ul className="rows">
                  {s.requests.map((r) => (
                    <li key={r.userId} className="row static" data-testid="join-request">
                      <span className="row-main">
                        <span className="row-title">{session.directory.userName(r.userId)}</span>
                        <span className="row-preview">{r.inviter ? t('groups.invitedBy', { name: session.directory.userName(r.inviter) }) : r.message || t('groups.wantsToJoin')}</span>
                      </span>
                      <span className="row-actions">
                        <button type="button" className="primary small" onClick={() => void vm.approve(r.userId).then(() => session.joinRequests.check(s.conv))} data-testid="approve-request">
                          {t('groups.approve')}
                        </button>
                        <button type="button" className="small" onClick={() => void vm.reject(r.userId).then(() => session.joinRequests.check(s.conv))}>
                          {t('groups.decline')}
                        </button>
                      </span>
                    </li>
                  ))}
                </ul>
              </section>
            )}
            {!info.dismissed && invitable.length > 0 && (
              <section className="card" aria-labelledby="inv-title">
                <h3 id="inv-title">{t('groups.invite')}</h3>
                <form
                  className="inline-form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    if (invite) void vm.invite([invite]).then(() => setInvite(''));
                  }}
                >
                  <label className="sr-only" htmlFor="invite">
                    {t('groups.friendToInvite')}
                  </label>
                  <select id="invite" value={invite} onChange={(e) => setInvite(e.target.value)} data-testid="invite-select">
                    <option value="">{t('groups.chooseFriend')}</option>
                    {invitable.map((f) => (
                      <option key={f.user.id} value={f.user.id}>
                        {f.user.nickname || f.user.username}
                      </option>
                    ))}
                  </select>
                  <button type="submit" className="primary small" disabled={!invite || s.busy} data-testid="invite">
                    {t('groups.inviteButton')}
                  </button>
                </form>
              </section>
            )}
            <section className="card" aria-labelledby="mem-title">
              <h3 id="mem-title">{t('groups.membersTitle')}</h3>
              <ul className="rows">
                {s.members.map((m) => (
                  <li key={m.userId} className="row static" data-testid="member" data-user={m.username} data-role={m.role}>
                    <Avatar name={m.name} id={m.userId} size={32} />
                    <span className="row-main">
                      <span className="row-title">
                        {m.name}
                        {m.self && <span className="muted">{t('groups.youSuffix')}</span>}
                      </span>
                      <span className="row-preview">
                        {[m.role === 'member' ? '' : t(m.role === 'owner' ? 'groups.owner' : 'groups.admin'), m.muted ? t('groups.mutedTag') : ''].filter(Boolean).join(' · ')}
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
                  <button type="button" className="danger" onClick={() => confirm(t('groups.confirmLeave')) && void vm.leave().then(() => navigate('/'))}>
                    {t('groups.leave')}
                  </button>
                ) : (
                  <button type="button" className="danger" onClick={() => confirm(t('groups.confirmDismiss')) && void vm.dismiss()}>
                    {t('groups.dismiss')}
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

/** This user's notification level for the group (synced to their other devices by `notify.setting`). */
function NotifyLevel(props: { session: Session; conv: string; superGroup: boolean }) {
  const { session, conv } = props;
  const { t } = useTranslation();
  useReceiptsTick(session);
  const [defaults, setDefaults] = useState<{ group: NotifyLevelName; super: NotifyLevelName } | null>(null);
  useEffect(() => {
    void session.receipts.loadNotifySettings().then((r) => setDefaults(r.defaults)).catch(() => {});
  }, [session]);
  const level = session.receipts.notifyLevel(conv) ?? (defaults ? (props.superGroup ? defaults.super : defaults.group) : undefined);
  if (!level) return null;
  return (
    <section className="card notify-level">
      <label>
        {t('receipts.notify')}
        <select value={level} data-testid="notify-level" onChange={(e) => void session.receipts.setNotifyLevel(conv, e.target.value as NotifyLevelName).catch(() => {})}>
          <option value="all">{t('receipts.notifyAll')}</option>
          <option value="mentions">{t('receipts.notifyMentions')}</option>
          <option value="none">{t('receipts.notifyNone')}</option>
        </select>
      </label>
    </section>
  );
}
